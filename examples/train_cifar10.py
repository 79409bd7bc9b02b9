"""Train a registered model with the engine's Python API (what `python -m zoo.train` does).

python examples/train_cifar10.py --data-dir DIR [--model resnet20] [--epochs 5]
"""

import argparse

import zoo
from zoo.engine import Trainer, build_config

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", default=None, help="folder with the official CIFAR-10 layout (else download)")
parser.add_argument("--model", default="resnet20")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=None, help="default: the model's recipe")
parser.add_argument("--out", default="runs")
args = parser.parse_args()

cfg = build_config(
    args.model,
    hints=zoo.model_info(args.model).recipe,  # the model's own recipe ...
    overrides={"data_dir": args.data_dir, "epochs": args.epochs, "out": args.out}  # ... with our changes
    | ({"batch_size": args.batch_size} if args.batch_size else {}),
)
summary = Trainer(cfg, argv=["examples/train_cifar10.py"]).fit()
print(summary)
model = zoo.load(f"{summary['run_dir']}/last.safetensors")  # the weights, rebuilt from their header
print(model.zoo_cfg["metrics"])
