"""``python -m zoo.train MODEL``: train any registered model on CIFAR-10/100 or a folder of images.

Values come, lowest first, from TrainConfig's defaults, the model's registry recipe, ``--recipe``, ``--config
FILE``, then the flags given here (`zoo.engine.build_config`, the same from Python). ``--resume RUN_DIR``
continues a stopped run exactly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

from ._cli import add_config_flags, config_values, run
from .engine import RECIPES, RESUME_OVERRIDES, TrainConfig, Trainer, build_config, configure_process, load_config_file
from .engine.config import field_flag

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", nargs="?", help="registered model name (python -m zoo.list)")
    p.add_argument("--recipe", default="default", choices=sorted(RECIPES), help="named recipe (default: the model's)")
    p.add_argument("--config", metavar="FILE", default=None, help="JSON, TOML or YAML file of TrainConfig fields")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR as configured there; only "
        f"{', '.join(map(field_flag, RESUME_OVERRIDES))} may come with it (e.g. on another machine)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    add_config_flags(p)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: `build_config` with ``--config FILE``'s values, then the flags given, over the recipe."""
    values = {**(load_config_file(args.config) if args.config else {}), **config_values(args)}
    return build_config(args.model, recipe=args.recipe, overrides=values)


def resume_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The flags given with ``--resume``: machine and output ones only, the run's own config is fixed."""
    given = config_values(args)
    if args.model or args.config or args.recipe != "default" or args.overwrite:
        parser.error(
            "--resume RUN_DIR continues the run configured there: give no MODEL, --recipe, --config or --overwrite"
        )
    fixed = [k for k in given if k not in RESUME_OVERRIDES]
    if fixed:
        flags, allowed = ", ".join(map(field_flag, fixed)), ", ".join(map(field_flag, RESUME_OVERRIDES))
        parser.error(f"{flags}: a resumed run keeps its configuration; with --resume only {allowed} can be given")
    return given


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = ["python", "-m", "zoo.train", *(sys.argv[1:] if argv is None else argv)]

    def body() -> int:
        if args.resume:
            trainer = Trainer.resume(args.resume, overrides=resume_overrides(parser, args), argv=command)
        else:
            if not args.model:
                parser.error("MODEL is required (or --resume RUN_DIR)")
            trainer = Trainer(config_from_args(args), argv=command, recipe=args.recipe, overwrite=args.overwrite)
        configure_process(trainer.device, trainer.cfg.threads)  # threads, malloc, cuDNN: this process only
        return 0 if trainer.fit()["status"] == "finished" else 130

    try:
        return run("zoo.train", body)
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
