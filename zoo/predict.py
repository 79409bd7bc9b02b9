"""``python -m zoo.predict MODEL IMAGE...``: top-k classes of image files, with the model's own preprocessing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._cli import add_model_arguments, count, model_from_args, run
from .deploy import predict_images

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.predict", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_model_arguments(p)
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...); any size, resized to the model's input")
    out = p.add_argument_group("output")
    out.add_argument("--top-k", type=count(1), default=5, help="classes per image (at most the model's)")
    out.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return p


def _main(args: argparse.Namespace) -> int:
    model = model_from_args(args, require_weights=True)
    results = predict_images(model, args.images, top_k=args.top_k)
    errors = [r["error"] for r in results if "error" in r]  # each names its image; --json keeps them in the document
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "top_k" in r:
                print(f"{r['image']}: " + ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r["top_k"]))
    for error in errors:
        print(f"zoo.predict: error: {error}", file=sys.stderr)
    return 2 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run("zoo.predict", lambda: _main(args))


if __name__ == "__main__":
    raise SystemExit(main())
