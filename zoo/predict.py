"""``python -m zoo.predict MODEL IMAGE...``: top-k classes of image files, with the model's own preprocessing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .deploy import predict_images
from .registry import UnknownModelError, create
from .weights import WeightsError, load

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.predict", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("model", help="registered model name (name.tag for published weights), or a zoo .safetensors file")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...); any size, resized to the model's input")
    src = p.add_argument_group("weights").add_mutually_exclusive_group()
    src.add_argument("--weights", help="safetensors file or URL")
    src.add_argument("--pretrained", action="store_true", help="the model's default published weights")
    out = p.add_argument_group("output")
    out.add_argument("--top-k", type=int, default=5)
    out.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.model.endswith(".safetensors"):
            model = load(args.model)
        else:
            model = create(args.model, pretrained=args.pretrained, weights=args.weights)
    except (UnknownModelError, WeightsError, FileNotFoundError) as exc:
        print(f"zoo.predict: error: {exc}", file=sys.stderr)
        return 1
    if not (args.pretrained or args.weights or args.model.endswith(".safetensors") or "." in args.model):
        print(
            "zoo.predict: warning: no weights given (--weights/--pretrained): predictions are random", file=sys.stderr
        )
    results = predict_images(model, args.images, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['image']}: error: {r['error']}")
                continue
            best = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r["top_k"])
            print(f"{r['image']}: {best}")
    for r in results:
        if "error" in r:
            print(f"zoo.predict: error: {r['error']}", file=sys.stderr)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
