"""``python -m zoo.export MODEL``: write a model as ONNX, a torch.export program, or safetensors weights."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .deploy import export_onnx, export_program
from .fuse import fuse_bn
from .registry import UnknownModelError, create
from .weights import WeightsError, save_weights

__all__ = ["build_parser", "main"]

_SUFFIX = {"onnx": ".onnx", "export": ".pt2", "safetensors": ".safetensors"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.export", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("model", help="registered model name, optionally name.tag for published weights")
    src = p.add_argument_group("weights").add_mutually_exclusive_group()
    src.add_argument("--weights", help="safetensors file or URL to load")
    src.add_argument("--pretrained", action="store_true", help="the model's default published weights")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=sorted(_SUFFIX), default="onnx")
    out.add_argument("--fuse", action="store_true", help="fold BatchNorm into the convs first")
    out.add_argument("--output", type=Path, default=None, help="output file (default: MODEL[-fused].SUFFIX)")
    out.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size when no weights are given")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = create(args.model, pretrained=args.pretrained, weights=args.weights, num_classes=args.num_classes)
    except (UnknownModelError, WeightsError, FileNotFoundError) as exc:
        print(f"zoo.export: error: {exc}", file=sys.stderr)
        return 1
    model.eval()
    if args.fuse:
        fuse_bn(model)
    name = args.model.replace(".", "_") + ("-fused" if args.fuse else "")
    output = args.output or Path(name + _SUFFIX[args.format])
    if args.format == "onnx":
        export_onnx(model, output, opset=args.opset)
    elif args.format == "export":
        export_program(model, output)
    else:
        save_weights(model, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
