"""Re-measure every shipped weight file on the full test split and compare with its model card.

    python benchmarks/verify_weights.py --data-dir DIR [--models resnet20.cifar10 ...] [--no-tta]

Each ``NAME.TAG`` of ``zoo.list_models(pretrained=True)`` is built with ``zoo.create`` (its pinned sha256 is
checked on load) and evaluated in fp32 by ``zoo.eval``'s ``evaluate_model``, the function ``tools/publish.py`` used
to write the card, at ``--tta 2``: its forward passes give the plain and ``--tta`` numbers too (``--no-tta``:
plain only). Every measured number is compared with the registry's copy of the card's
(``zoo/pretrained/manifest.json``; a test keeps the card, the manifest and the file's header equal): top-1,
top-5 and the TTA top-1s must agree to 0.01 points, the loss to 0.0001. Prints a table; exits 1 when any
weight disagrees.

The test split is never downloaded: the cards name the copy their numbers come from (for the shipped weights,
CIFAR-10 (offline JPEG copy), written by ``python ../shared/data/prepare_cifar10.py DIR``), so point
``--data-dir`` at that copy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from _throughput import machine_line

import zoo
from zoo.data import load_cifar
from zoo.eval import evaluate_model
from zoo.registry import split_model_name

# metric -> (TTA level that measures it, key in evaluate_model's by_tta entries, tolerance)
CHECKS: dict[str, tuple[int, str, float]] = {
    "top1": (0, "top1", 0.01),
    "top5": (0, "top5", 0.01),
    "loss": (0, "loss", 1e-4),
    "top1_tta": (1, "top1", 0.01),
    "top1_tta2": (2, "top1", 0.01),
}


def verify(name_tag: str, split: Any, *, tta: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Measured vs published metrics of one ``NAME.TAG``: {"rows": [(metric, card, measured, ok)], "ok": bool}."""
    name, tag = split_model_name(name_tag)
    published = zoo.model_info(name).weights[tag].metrics
    model = zoo.create(name_tag).eval()  # raises on a sha256 mismatch
    top = max(level for metric, (level, _, _) in CHECKS.items() if metric in published and (tta or not level))
    by_tta = evaluate_model(model, split, tta=top, device=device)["by_tta"]  # every level up to top, one pass
    rows = []
    for metric, (level, key, tolerance) in CHECKS.items():
        if metric in published and level <= top:
            measured = by_tta[level][key]
            rows.append((metric, published[metric], measured, abs(measured - published[metric]) <= tolerance + 1e-9))
    return {"rows": rows, "ok": all(ok for *_, ok in rows)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder holding the test split the cards name")
    parser.add_argument("--models", nargs="+", default=None, help="NAME.TAG ... (default: every shipped weight)")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="check the plain metrics only")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto (default: cpu)")
    args = parser.parse_args(argv)
    names = args.models or zoo.list_models(pretrained=True)
    unknown = [n for n in names if "." not in n or not zoo.is_model(n)]
    if unknown:
        print(f"verify_weights: error: not published weights (NAME.TAG): {', '.join(unknown)}", file=sys.stderr)
        return 1
    try:
        test = load_cifar("cifar10", "test", args.data_dir, download=False)
    except (OSError, ValueError) as exc:
        print(f"verify_weights: error: {exc}", file=sys.stderr)
        return 1
    print(f"{machine_line()}, {len(test)} test images in {args.data_dir}")
    print("| weights | metric | card | measured | agrees |")
    print("| --- | --- | --- | --- | --- |")
    bad, tick = [], time.perf_counter()
    for name_tag in names:
        report = verify(name_tag, test, tta=args.tta, device=args.device)
        for metric, card, measured, ok in report["rows"]:
            digits = 4 if metric == "loss" else 2
            print(f"| {name_tag} | {metric} | {card:.{digits}f} | {measured:.{digits}f} | {'yes' if ok else 'NO'} |")
        if not report["ok"]:
            bad.append(name_tag)
    seconds = time.perf_counter() - tick
    if bad:
        print(f"verify_weights: {len(bad)} of {len(names)} disagree ({seconds:.0f} s): {', '.join(bad)}")
        return 1
    print(f"verify_weights: all {len(names)} agree with their cards ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
