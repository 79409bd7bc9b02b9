"""``python -m zoo.train MODEL``: train any registered model on CIFAR-10/100 or a folder of images.

Values come, lowest first, from the engine's fallbacks, the model's registry recipe hints, ``--recipe``,
``--config FILE``, then the flags given here. ``--resume RUN_DIR`` continues a stopped run exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from .data import DatasetNotFoundError
from .engine import (
    CHOICES,
    RECIPES,
    RESUME_OVERRIDES,
    NonFiniteLossError,
    Trainer,
    build_config,
    load_config_file,
)
from .registry import UnknownModelError, model_info

__all__ = ["build_parser", "main", "resume_overrides"]

_NOT_CONFIG = {"model", "recipe", "config", "resume", "norm_layer", "act_layer", "drop_rate", "model_kwargs"}
_FLAGS = {"download": "--no-download", "run_name": "--name"}  # the flags whose name is not the field's


def _flags(fields: Sequence[str]) -> str:
    return ", ".join(_FLAGS.get(f, "--" + f.replace("_", "-")) for f in fields)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("model", nargs="?", help="registered model name (python -m zoo.list)")
    p.add_argument(
        "--recipe",
        default="default",
        choices=sorted(RECIPES),
        help="named recipe (default: the model's own hints from the registry)",
    )
    p.add_argument("--config", metavar="FILE", default=None, help="JSON/TOML file of TrainConfig fields")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help=f"continue the run in RUN_DIR as configured there; only the machine and output flags "
        f"{_flags(RESUME_OVERRIDES)} may come with it (e.g. on another machine)",
    )

    d = p.add_argument_group("data")
    d.add_argument("--dataset", help="cifar10 | cifar100 | folder:PATH (default: cifar10)")
    d.add_argument("--data-dir", help="folder holding the official layouts (default: $ZOO_DATA or ~/.cache/zoo/data)")
    d.add_argument("--no-download", dest="download", action="store_false", help="never download missing data")
    d.add_argument(
        "--val-split",
        type=int,
        metavar="N",
        help="hold out N training images for per-epoch validation and best-model selection (default: 0, "
        "then the per-epoch evaluation is on the test split, as in the notebook)",
    )
    d.add_argument("--limit-train", type=int, metavar="N", help="train on the first N images only (smoke tests)")
    d.add_argument("--limit-test", type=int, metavar="N", help="evaluate on the first N test images only")
    d.add_argument("--crop", type=int, metavar="PAD", help="random-crop padding in pixels, 0 = off (default: 4)")
    d.add_argument("--crop-mode", choices=CHOICES["crop_mode"], help="padding of the random crop (default: reflect)")
    d.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random horizontal flips (default: on)")
    d.add_argument(
        "--flip-mode",
        choices=CHOICES["flip_mode"],
        help="random: a coin per image and epoch; alternate: random in epoch 1, then each image flips every "
        "other epoch (airbench) (default: random)",
    )
    d.add_argument("--cutout", type=int, metavar="SIZE", help="cutout square size, 0 = off (default: 0)")

    m = p.add_argument_group("model")
    m.add_argument("--norm-layer", help="swap the norm: batchnorm, groupnorm, layernorm, instancenorm, none")
    m.add_argument("--act-layer", help="swap the activation: relu, silu, gelu, ...")
    m.add_argument("--drop-rate", type=float, help="dropout before the classifier")
    m.add_argument(
        "--model-kwargs",
        type=json.loads,
        metavar="JSON",
        help="other builder kwargs, e.g. '{\"zero_init_last\": true}'",
    )

    o = p.add_argument_group("optimisation (defaults: from the recipe, else the model's registry hints)")
    o.add_argument("--epochs", type=int)
    o.add_argument("--batch-size", type=int)
    o.add_argument("--optimizer", choices=CHOICES["optimizer"])
    o.add_argument("--lr", type=float, help="peak learning rate")
    o.add_argument("--momentum", type=float, help="SGD momentum (default: 0.9)")
    o.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum (default: on)")
    o.add_argument("--weight-decay", type=float)
    o.add_argument(
        "--no-decay-norm-bias",
        action=argparse.BooleanOptionalAction,
        help="exempt norm parameters and biases from weight decay (default: on)",
    )
    o.add_argument(
        "--decoupled-wd",
        action=argparse.BooleanOptionalAction,
        help="weight decay follows the schedule but not each group's learning rate (default: off)",
    )
    o.add_argument("--norm-lr-scale", type=float, help="learning-rate multiplier for norm parameters (default: 1)")
    o.add_argument(
        "--freeze-norm-scale", action=argparse.BooleanOptionalAction, help="keep norm weights at 1 (default: off)"
    )
    o.add_argument("--schedule", choices=CHOICES["schedule"])
    o.add_argument("--warmup-epochs", type=float, help="linear warmup length (default: 0; onecycle uses 25%%)")
    o.add_argument(
        "--warmup-start-factor", type=float, help="first learning rate as a fraction of the peak (default: 0.01)"
    )
    o.add_argument(
        "--final-lr-factor", type=float, help="last learning rate of the linear schedule, fraction of the peak"
    )
    o.add_argument("--label-smoothing", type=float)
    o.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient norm (default: off)")
    o.add_argument("--ema", action=argparse.BooleanOptionalAction, help="evaluate/save an EMA of the weights")
    o.add_argument("--ema-decay", type=float, help="EMA decay per step (default: 0.999)")
    o.add_argument(
        "--lookahead",
        action=argparse.BooleanOptionalAction,
        help="pull the weights back to a slow average of them every few steps (airbench) (default: off)",
    )
    o.add_argument("--lookahead-every", type=int, metavar="STEPS", help="lookahead interval (default: 5)")
    o.add_argument("--lookahead-decay", type=float, help="lookahead decay per step (default: 0.95)")
    o.add_argument(
        "--data-init",
        type=int,
        metavar="N",
        help="initialise the model from N training images if it supports it (airbench: whitening) (default: 0)",
    )
    o.add_argument("--freeze-stem-epochs", type=int, metavar="E", help="freeze the stem after E epochs")

    k = p.add_argument_group("knowledge distillation (Hinton et al. 2015)")
    k.add_argument(
        "--teacher",
        metavar="NAME.TAG|FILE",
        help="learn from this frozen model's softened predictions too: published weights (python -m zoo.list "
        "--pretrained) or a zoo .safetensors file (default: none)",
    )
    k.add_argument(
        "--distill-weight",
        type=float,
        metavar="W",
        help="loss = (1 - W) * task loss + W * T^2 * KL(teacher || student) (default: 0.5)",
    )
    k.add_argument("--distill-temperature", type=float, metavar="T", help="softmax temperature T (default: 4)")

    t = p.add_argument_group("distributed (under torchrun --nproc_per_node=N -m zoo.train ...)")
    t.add_argument(
        "--sync-bn",
        action=argparse.BooleanOptionalAction,
        help="BatchNorm statistics over the global batch (default: off: per-rank statistics, averaged "
        "over ranks before every evaluation and save)",
    )

    h = p.add_argument_group("machine")
    h.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto: cuda, then mps, then cpu)")
    h.add_argument(
        "--precision",
        choices=CHOICES["precision"],
        help="autocast dtype (default: auto: bf16 on bf16-capable CPUs/GPUs, fp16 on older GPUs)",
    )
    h.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC memory format (default: on)")
    h.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model (default: off)")
    h.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    h.add_argument("--seed", type=int, help="seed of every random draw (default: 0)")

    w = p.add_argument_group("output")
    w.add_argument("--out", help="parent folder of run folders (default: runs)")
    w.add_argument("--name", dest="run_name", help="run folder name (default: MODEL-DATE-TIME)")
    w.add_argument("--checkpoint-every", type=int, metavar="EPOCHS", help="checkpoint interval (default: 1)")
    w.add_argument("--progress", action=argparse.BooleanOptionalAction, help="tqdm progress bars (default: on)")
    w.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        help="redraw curves.png after each epoch (default: on; needs matplotlib)",
    )
    w.add_argument("--eval-batch-size", type=int, help="evaluation batch size (default: 1000)")
    w.add_argument(
        "--tta",
        type=int,
        nargs="?",
        const=1,
        choices=CHOICES["tta"],
        metavar="LEVEL",
        help="also report the final test accuracy with test-time augmentation: 1 (or no value) mirror, "
        "2 mirror + 1-pixel translations (default: 0)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    given = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}
    values.update(given)
    model_kwargs = dict(values.pop("model_kwargs", {}) or {})
    model_kwargs.update(getattr(args, "model_kwargs", None) or {})
    for key in ("norm_layer", "act_layer", "drop_rate"):
        if key in vars(args):
            model_kwargs[key] = getattr(args, key)
    values["model_kwargs"] = model_kwargs
    hints = model_info(args.model).recipe
    return build_config(args.model, recipe=args.recipe, hints=hints, overrides=values), args.recipe


def resume_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The flags given with ``--resume``: machine and output ones only, the run's own config is fixed."""
    given = {k: v for k, v in vars(args).items() if k not in ("recipe", "config", "resume")}
    if "model" in given or args.config or args.recipe != "default":
        parser.error("--resume RUN_DIR continues the run configured there: give no MODEL, --recipe or --config")
    fixed = [k for k in given if k not in RESUME_OVERRIDES]
    if fixed:
        flags, allowed = _flags(fixed), _flags(RESUME_OVERRIDES)
        parser.error(f"{flags}: a resumed run keeps its configuration; with --resume only {allowed} can be given")
    return given


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    argv_list = ["python", "-m", "zoo.train", *(sys.argv[1:] if argv is None else argv)]
    try:
        if args.resume:
            trainer = Trainer.resume(args.resume, overrides=resume_overrides(parser, args), argv=argv_list)
        else:
            if not args.model:
                parser.error("MODEL is required (or --resume RUN_DIR)")
            cfg, recipe = config_from_args(args)
            trainer = Trainer(cfg, argv=argv_list, recipe=recipe)
        summary = trainer.fit()
    except (
        DatasetNotFoundError,
        UnknownModelError,
        NonFiniteLossError,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    ) as exc:
        rank = f" (rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']})" if "RANK" in os.environ else ""
        print(f"zoo.train: error{rank}: {exc}", file=sys.stderr)
        return 1
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0 if summary["status"] == "finished" else 130


if __name__ == "__main__":
    raise SystemExit(main())
