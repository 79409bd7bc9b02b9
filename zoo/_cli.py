"""What the command-line modules share: one error policy, one way to name a model and its weights, checked numbers.

Error policy: zoo's own errors (`zoo.errors.ZooError`) are the user's to fix, so they print as one line
``zoo.X: error: ...`` and exit with code 2 (argparse's code for a bad command line); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from ._factory import resolve_model
from .engine.config import _RENAMED, FIELDS, GROUPS, field_flag, field_type
from .errors import WeightsError, ZooError

__all__ = ["add_config_flags", "add_model_arguments", "config_values", "count", "model_from_args", "number", "run"]

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


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None or value == {} else str(value)


def add_config_flags(parser: argparse.ArgumentParser, fields: Any = None) -> None:
    """One flag per `TrainConfig` field (all but MODEL), from the field's own metadata: group, help, default,
    choices. Only flags that are given reach ``args`` (``argparse.SUPPRESS``), so lower layers keep theirs."""
    groups = {name: parser.add_argument_group(title) for name, title in GROUPS.items()}
    for name, f in FIELDS.items():
        if (fields is not None and name not in fields) or field_flag(name) == "":
            continue
        meta, (kind, _) = f.metadata, field_type(name)
        default = f.default_factory() if callable(f.default_factory) else f.default
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "metavar": meta["metavar"]}
        options["help"] = (meta["help"] + f" (default: {_default_text(default)})").replace("%", "%%")
        if kind is bool:
            options.update(action=argparse.BooleanOptionalAction)
            options.pop("metavar")
        elif kind is tuple:
            options.update(nargs="+", type=float if "float" in str(f.type) else str)
        elif kind is dict:
            options.update(type=_json_object)
        else:
            options.update(type=kind, choices=meta["choices"])
            if meta["const"] is not None:
                options.update(nargs="?", const=meta["const"])
        groups[meta["group"]].add_argument(field_flag(name), **options)
    for old, (new, _) in _RENAMED.items():  # a renamed field's old flag says what replaced it (files still load)
        flag = "--" + old.replace("_", "-")
        if (fields is None or new in fields) and flag not in parser._option_string_actions:
            parser.add_argument(
                flag, nargs="?", action=_Renamed, dest=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )


class _Renamed(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"{self.option_strings[0]} was renamed: use {field_flag(self.dest)} (see --help)")


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainConfig` values given as flags."""
    return {k: v for k, v in vars(args).items() if k in FIELDS and k != "model"}
