"""What the command-line modules share: one error policy, one way to name a model and its weights, checked numbers.

Error policy: zoo's own errors (`zoo.errors.ZooError`) are the user's to fix, so they print as one line
``zoo.X: error: ...`` and exit with code 2 (argparse's code for a bad command line); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

import torch.nn as nn

from ._factory import resolve_model
from .errors import WeightsError, ZooError

__all__ = ["add_model_arguments", "count", "model_from_args", "number", "run"]

EXIT_USER_ERROR = 2


def run(prog: str, body: Callable[[], int]) -> int:
    """Call ``body``; a `ZooError` becomes one line on stderr and exit code 2."""
    try:
        return body()
    except ZooError as exc:
        rank = f" (rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']})" if "RANK" in os.environ else ""
        print(f"{prog}: error{rank}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


def count(low: int = 1) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def number(low: float = -math.inf, high: float = math.inf) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected a finite number in [{low}, {high}], got {text}")
        return value

    parse.__name__ = "number"
    return parse


def add_model_arguments(parser: argparse.ArgumentParser, *, weights_help: str = "") -> None:
    """``MODEL`` plus the weights group, the same in every CLI (see `zoo.resolve_model`)."""
    parser.add_argument(
        "model",
        help="NAME (with --weights or --pretrained), NAME.TAG of published weights (python -m zoo.list "
        "--pretrained), or a zoo .safetensors file or http(s) URL" + weights_help,
    )
    src = parser.add_argument_group("weights").add_mutually_exclusive_group()
    src.add_argument("--weights", metavar="FILE|URL", help="a safetensors file or URL for NAME")
    src.add_argument("--pretrained", action="store_true", help="NAME's default published weights")


def model_from_args(args: argparse.Namespace, *, require_weights: bool, **kwargs: object) -> nn.Module:
    """The model ``args`` name, through `zoo.resolve_model`; ``require_weights`` refuses a bare NAME."""
    model = resolve_model(args.model, weights=args.weights, pretrained=args.pretrained, **kwargs)
    if require_weights and model.pretrained_cfg.get("file") is None and model.pretrained_cfg.get("url") is None:
        raise WeightsError(
            f"{args.model} names an architecture without weights: give NAME.TAG, --pretrained or --weights FILE"
        )
    return model
