"""``python -m zoo.export MODEL``: write a model as ONNX (float, or static int8 with ``--int8``), a torch.export
program, or safetensors weights."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ._atomic import check_target
from ._cli import add_model_arguments, count, model_from_args, run
from .data import load_splits
from .deploy import export_onnx, export_program
from .errors import ConfigError
from .fuse import fuse_bn
from .int8 import calibration_batches, quantize
from .weights import save_weights

__all__ = ["build_parser", "main"]

_SUFFIX = {"onnx": ".onnx", "export": ".pt2", "safetensors": ".safetensors"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.export", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_model_arguments(p)
    p.add_argument("--num-classes", type=count(0), default=None, help="classifier size when no weights are given")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=sorted(_SUFFIX), default="onnx")
    out.add_argument("--fuse", action="store_true", help="fold BatchNorm into the convs first")
    out.add_argument("--output", type=Path, default=None, help="output file (default: MODEL[-fused].SUFFIX)")
    out.add_argument("--opset", type=count(7), default=None, help="ONNX opset (default: the exporter's)")
    q = p.add_argument_group("int8 (ONNX Runtime static quantization; docs/deploy.md)")
    q.add_argument("--int8", action="store_true", help="quantize: int8 weights per channel, calibrated activations")
    q.add_argument("--data-dir", default=None, help="CIFAR data whose TRAINING images calibrate (never the test ones)")
    q.add_argument("--dataset", default="cifar10", help="cifar10 | cifar100 | folder:PATH (its train/ images)")
    q.add_argument("--calibration-images", type=count(1), default=512, help="how many training images calibrate")
    q.add_argument("--calibration-method", choices=["minmax", "percentile", "entropy"], default="minmax")
    q.add_argument("--reduce-range", action="store_true", help="7-bit weights, for x86 CPUs without VNNI (AVX2 only)")
    return p


def _main(args: argparse.Namespace) -> int:
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = model_from_args(args, require_weights=False, **kwargs).eval()
    if args.fuse:
        fuse_bn(model)
    suffix = "-int8" if args.int8 else "-fused" if args.fuse else ""
    name = Path(args.model).name.removesuffix(".safetensors").replace(".", "_") + suffix
    output = args.output or Path(name + _SUFFIX[args.format])
    check_target(output)  # before the model is exported (or calibrated): a bad path fails first
    if args.int8:
        if args.format != "onnx":
            raise ConfigError("--int8 writes an ONNX file: use it with --format onnx")
        train, _ = load_splits(
            None, dataset=args.dataset, data_dir=args.data_dir, input_size=model.pretrained_cfg["input_size"][1:]
        )
        batches = calibration_batches(model, train, images=min(args.calibration_images, len(train)))
        quantize(model, batches, output, method=args.calibration_method, reduce_range=args.reduce_range)
    elif args.format == "onnx":
        export_onnx(model, output, opset=args.opset)
    elif args.format == "export":
        export_program(model, output)
    else:
        save_weights(model, output)
    print(f"wrote {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run("zoo.export", lambda: _main(args))


if __name__ == "__main__":
    raise SystemExit(main())
