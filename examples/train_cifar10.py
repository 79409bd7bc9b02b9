"""Train a registered model from Python, as `python -m zoo.train` does (the same config, the same engine).

python examples/train_cifar10.py --data-dir DIR [--model resnet20] [--epochs 5]
"""

import argparse

import zoo
from zoo.engine import configure_process, fit, resolve_device

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", default=None, help="folder with the official CIFAR-10 layout (else download)")
parser.add_argument("--model", default="resnet20")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=None, help="default: the model's recipe")
parser.add_argument("--out", default="runs")
args = parser.parse_args()

overrides = {"data_dir": args.data_dir, "epochs": args.epochs, "out": args.out}
if args.batch_size:
    overrides["batch_size"] = args.batch_size
configure_process(resolve_device("auto"))  # once per process, as zoo.train does: threads, malloc, cuDNN
summary = fit(args.model, **overrides)  # the model's own recipe, with our changes on top
print(summary)
model = zoo.load(f"{summary['run_dir']}/last.safetensors")  # the weights, rebuilt from their header
print(model.zoo_cfg["metrics"])
