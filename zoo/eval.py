"""``python -m zoo.eval NAME[.TAG]``: re-measure a model's weights on a data set's test split.

Prints top-1/top-5, loss, per-class accuracy and the confusion matrix (text; PNG with ``--plot``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .data import DatasetNotFoundError, Split, load_cifar, load_folder_splits
from .engine import CHOICES, evaluate, resolve_device, resolve_precision
from .registry import UnknownModelError, create
from .weights import WeightsError, load_named

__all__ = ["build_parser", "evaluate_model", "main"]


_TTA_NAMES = {0: "", 1: ", flip TTA", 2: ", flip + translate TTA"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", help="name.tag of published weights, a name with --weights, or a zoo .safetensors file")
    p.add_argument("--weights", help="safetensors file or URL (default: the model's published weights)")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="cifar10", help="cifar10 | cifar100 | folder:PATH (default: cifar10)")
    d.add_argument("--data-dir", default=None, help="folder holding the official layout (default: $ZOO_DATA, cache)")
    d.add_argument("--no-download", dest="download", action="store_false", help="never download missing data")
    d.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    r = p.add_argument_group("run")
    r.add_argument(
        "--tta",
        type=int,
        nargs="?",
        const=1,
        default=0,
        choices=CHOICES["tta"],
        metavar="LEVEL",
        help="test-time augmentation: 1 (or no value) averages with the mirror image, 2 adds airbench's "
        "1-pixel translations (default: 0)",
    )
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    r.add_argument(
        "--precision",
        default="fp32",
        choices=CHOICES["precision"],
        help="autocast dtype (default: fp32, so published numbers are reproducible anywhere)",
    )
    r.add_argument("--batch-size", type=int, default=500)
    o = p.add_argument_group("output")
    o.add_argument("--plot", type=Path, default=None, metavar="PNG", help="write the confusion matrix as a PNG")
    o.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def _test_split(dataset: str, data_dir: str | None, download: bool, input_size: tuple[int, int]) -> Split:
    if dataset.startswith("folder:"):
        _, test = load_folder_splits(dataset[len("folder:") :], input_size)
        if test is None:
            raise DatasetNotFoundError(f"{dataset} has no val/ or test/ sub-folder to evaluate on")
        return test
    return load_cifar(dataset, "test", data_dir, download=download)


def evaluate_model(
    model: torch.nn.Module,
    split: Split,
    *,
    tta: int = 0,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 500,
) -> dict[str, Any]:
    """Evaluate with the model's own mean/std (``pretrained_cfg``); adds per-class accuracy.

    The result is `zoo.engine.evaluate`'s: ``by_tta`` holds every TTA level up to ``tta`` from the same passes.
    """
    dev = resolve_device(device)
    cfg = model.pretrained_cfg
    result = evaluate(
        model.to(dev),
        split,
        mean=torch.tensor(cfg["mean"], device=dev),
        std=torch.tensor(cfg["std"], device=dev),
        device=dev,
        amp_dtype=resolve_precision(precision, dev),
        batch_size=batch_size,
        channels_last=False,
        tta=int(tta),
        num_classes=model.num_classes,
    )
    confusion = result["confusion"]
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float() * 100).tolist()
    result["per_class"] = per_class
    return result


def _plot_confusion(confusion: torch.Tensor, labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(confusion.numpy(), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.weights and not args.model.endswith(".safetensors"):
            model = create(args.model, weights=args.weights)
        else:
            model, _ = load_named(args.model)
        split = _test_split(args.dataset, args.data_dir, args.download, model.pretrained_cfg["input_size"][1:])
    except (UnknownModelError, WeightsError, DatasetNotFoundError, FileNotFoundError) as exc:
        print(f"zoo.eval: error: {exc}", file=sys.stderr)
        return 1
    if args.limit:
        split = Split(split.images[: args.limit], split.labels[: args.limit], split.classes)
    result = evaluate_model(
        model, split, tta=args.tta, device=args.device, precision=args.precision, batch_size=args.batch_size
    )
    labels = list(model.pretrained_cfg.get("label_names") or split.classes)
    if args.json:
        out = {k: v for k, v in result.items() if k != "confusion"}
        out.update(model=args.model, tta=args.tta, confusion=result["confusion"].tolist(), labels=labels)
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{args.model} on {args.dataset} test ({result['n']} images{_TTA_NAMES[args.tta]}): "
            f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}"
        )
        for lower in result["by_tta"][:-1]:  # measured by the same forward passes
            print(
                f"  {_TTA_NAMES[lower['tta']].lstrip(', ') or 'no TTA'}: top-1 {lower['top1']:.2f}%  "
                f"top-5 {lower['top5']:.2f}%  loss {lower['loss']:.4f}"
            )
        width = max(len(label) for label in labels)
        print("per-class accuracy:")
        for label, acc in zip(labels, result["per_class"]):
            print(f"  {label:<{width}}  {acc:6.2f}%")
        print("confusion matrix (rows: true, columns: predicted):")
        for label, row in zip(labels, result["confusion"].tolist()):
            print(f"  {label:<{width}}  " + " ".join(f"{v:5d}" for v in row))
    if args.plot:
        _plot_confusion(result["confusion"], labels, args.plot, f"{args.model} (top-1 {result['top1']:.2f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
