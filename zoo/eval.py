"""``python -m zoo.eval MODEL``: re-measure a model's weights on a data set's test split.

Prints top-1/top-5, loss, per-class accuracy and the confusion matrix (text; PNG with ``--plot``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ._atomic import atomic_path, check_target
from ._cli import add_model_arguments, count, model_from_args, run
from .data import Split, load_cifar, load_folder_splits
from .engine import CHOICES, evaluate, resolve_device, resolve_precision
from .errors import ConfigError, DatasetNotFoundError, StorageError, WeightsError

__all__ = ["build_parser", "evaluate_model", "main"]

_TTA_NAMES = {0: "", 1: ", flip TTA", 2: ", flip + translate TTA"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(p)
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="cifar10", help="cifar10 | cifar100 | folder:PATH (default: cifar10)")
    d.add_argument("--data-dir", default=None, help="folder holding the official layout (default: $ZOO_DATA, cache)")
    d.add_argument("--no-download", dest="download", action="store_false", help="never download missing data")
    d.add_argument("--limit", type=count(1), default=None, metavar="N", help="evaluate the first N test images only")
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
    r.add_argument("--batch-size", type=count(1), default=500)
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="a progress bar")
    o = p.add_argument_group("output")
    o.add_argument("--plot", type=Path, default=None, metavar="PNG", help="write the confusion matrix as a PNG")
    o.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def eval_split(dataset: str, data_dir: str | None, download: bool, input_size: tuple[int, int]) -> Split:
    """The split a model is measured on: CIFAR's test split, or a folder's ``val/`` or ``test/``."""
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
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate with the model's own mean/std (``pretrained_cfg``); adds per-class accuracy.

    The model must predict the split's classes: evaluation never re-initialises anything. The result is
    `zoo.engine.evaluate`'s: ``by_tta`` holds every TTA level up to ``tta`` from the same passes.
    """
    num_classes = getattr(model, "num_classes", None)
    if num_classes != len(split.classes):
        raise WeightsError(
            f"the model predicts {num_classes} classes but the data has {len(split.classes)}: evaluate weights "
            "trained on these classes"
        )
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
        num_classes=num_classes,
        progress=progress,
    )
    confusion = result["confusion"]
    result["per_class"] = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float() * 100).tolist()
    return result


def _plot_confusion(confusion: torch.Tensor, labels: Sequence[str], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    image = ax.imshow(confusion.numpy(), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format=path.suffix[1:].lower())
    except StorageError:  # a full disk, said by atomic_path
        raise
    except OSError as exc:
        raise StorageError(f"--plot {path}: cannot write there ({exc.strerror})") from None


def _check_plot(path: Path) -> None:
    """Before the evaluation: ``path`` can be written and names a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    try:
        check_target(path)
    except StorageError as exc:
        raise StorageError(f"--plot: {exc}") from None
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.suffix[1:].lower() not in formats:
        raise ConfigError(f"--plot {path}: expected a file name ending in .{', .'.join(formats)} (e.g. confusion.png)")


def _print(args: argparse.Namespace, result: dict[str, Any], labels: list[str]) -> None:
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


def _main(args: argparse.Namespace) -> int:
    resolve_device(args.device)  # a device that is not there is the first thing to say
    if args.plot:
        _check_plot(args.plot)
    model = model_from_args(args, require_weights=True)
    split = eval_split(args.dataset, args.data_dir, args.download, model.pretrained_cfg["input_size"][1:])
    if args.limit:
        split = split.subset(slice(args.limit))
    result = evaluate_model(
        model,
        split,
        tta=args.tta,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        progress=args.progress and not args.json,
    )
    labels = list(model.pretrained_cfg.get("label_names") or split.classes)
    if args.plot:
        _plot_confusion(result["confusion"], labels, args.plot, f"{args.model} (top-1 {result['top1']:.2f}%)")
    if args.json:
        out = {k: v for k, v in result.items() if k != "confusion"}
        out.update(model=args.model, tta=args.tta, confusion=result["confusion"].tolist(), labels=labels)
        print(json.dumps(out, indent=2))
    else:
        _print(args, result, labels)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run("zoo.eval", lambda: _main(args))


if __name__ == "__main__":
    raise SystemExit(main())
