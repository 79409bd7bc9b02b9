"""TrainConfig: every knob of a training run, each defined once (default, help, group, range), and the recipes.

A field's metadata is the single source of its ``--flag`` (`zoo.train`), its range check (`TrainConfig.validate`)
and its row in docs/training.md (``python tools/gen_docs.py``). Settings resolve in one order everywhere, from
Python and from the command line alike (`build_config`): the field defaults below, the model's registry recipe,
a named recipe, a config file, then explicit values.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, UnknownModelError
from ..registry import model_info

__all__ = [
    "CHOICES",
    "GROUPS",
    "RECIPES",
    "RESUME_OVERRIDES",
    "TrainConfig",
    "build_config",
    "field_flag",
    "knob",
    "load_config_file",
    "resumed_config",
]

# The flag groups, in --help order.
GROUPS = {
    "data": "data",
    "model": "model (builder options; registered models only)",
    "optimisation": "optimisation",
    "distillation": "knowledge distillation (Hinton et al. 2015)",
    "distributed": "distributed (under torchrun --nproc_per_node=N -m zoo.train ...)",
    "machine": "machine",
    "output": "output",
}


def knob(
    default: Any,
    help: str,
    *,
    group: str,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    choices: tuple[Any, ...] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    const: Any = None,
    resume: bool = False,
) -> Any:
    """A `TrainConfig` field with what its flag, check and docs row need. ``low``/``high`` bound a number (open
    bounds exclude the value); ``resume=True`` lets ``--resume`` change it (where and how a run runs, not what it
    trains); ``const`` is the value of the bare flag (``--tta`` alone means 1)."""
    assert group in GROUPS, group
    meta = {"help": help, "group": group, "low": low, "high": high, "open_low": open_low, "open_high": open_high}
    meta.update(choices=choices, flag=flag, metavar=metavar, const=const, resume=resume)
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """A training run. Build one with `build_config` to get the model's recipe and a named recipe applied."""

    model: str = knob(
        "modern_gap_cnn",
        "registered model name (python -m zoo.list), or the class name of a model given from Python",
        group="model",
        flag="",
    )
    model_kwargs: dict[str, Any] = knob(
        {}, "other builder kwargs as JSON, e.g. '{\"zero_init_last\": true}'", group="model", metavar="JSON"
    )
    norm_layer: str | None = knob(
        None, "swap the norm: batchnorm, groupnorm, layernorm, instancenorm, none", group="model"
    )
    act_layer: str | None = knob(None, "swap the activation: relu, silu, gelu, ...", group="model")
    drop_rate: float | None = knob(None, "dropout before the classifier", group="model", low=0, high=1, open_high=True)
    # data
    dataset: str = knob("cifar10", "cifar10 | cifar100 | folder:PATH", group="data")
    data_dir: str | None = knob(
        None, "folder holding the official layouts ($ZOO_DATA, else ~/.cache/zoo/data)", group="data", resume=True
    )
    download: bool = knob(True, "download missing data (--no-download never does)", group="data", resume=True)
    val_split: int = knob(
        0,
        "hold out N training images for per-epoch validation and best-model selection (0: the "
        "per-epoch evaluation is on the test split, as in the notebook)",
        group="data",
        low=0,
        metavar="N",
    )
    limit_train: int | None = knob(None, "train on the first N images only", group="data", low=1, metavar="N")
    limit_test: int | None = knob(None, "evaluate on the first N test images only", group="data", low=1, metavar="N")
    augment: tuple[str, ...] | None = knob(
        None,
        "batched augmentation ops by registered name, in order (default: crop, flip, cutout as the options below say)",
        group="data",
        metavar="OP",
    )
    crop: int = knob(4, "random-crop padding in pixels, 0 = off", group="data", low=0, metavar="PAD")
    crop_mode: str = knob("reflect", "padding of the random crop", group="data", choices=("reflect", "zeros"))
    flip: bool = knob(True, "random horizontal flips", group="data")
    flip_mode: str = knob(
        "random",
        "random: a coin per image and epoch; alternate: random in epoch 1, then each image "
        "flips every other epoch (airbench)",
        group="data",
        choices=("random", "alternate"),
    )
    cutout: int = knob(0, "cutout square size, 0 = off", group="data", low=0, metavar="SIZE")
    resize_start: int = knob(
        0,
        "progressive resizing: train at SIZE pixels at first, growing linearly to the full "
        "size over --resize-epochs (0 = off); evaluation is always at full size",
        group="data",
        low=0,
        metavar="SIZE",
    )
    resize_epochs: float = knob(
        0.0, "epochs over which progressive resizing reaches the full size", group="data", low=0
    )
    select_fraction: float = knob(
        1.0,
        "online batch selection: each step trains on this fraction of its batch, the images a small proxy model "
        "finds hardest (1 = off; airbench96: 0.5)",
        group="data",
        low=0,
        high=1,
        open_low=True,
    )
    select_proxy: str = knob("airbench94_net", "the proxy model that ranks the batch (registered name)", group="data")
    select_proxy_kwargs: dict[str, Any] | None = knob(
        None,
        "the proxy's builder kwargs as JSON (default: airbench96's proxy, widths 32/64/64, for airbench94_net; "
        "the builder's own defaults for another model)",
        group="data",
        metavar="JSON",
    )
    select_every: int = knob(
        4, "the proxy takes an optimizer step on the images it kept every N steps", group="data", low=1, metavar="N"
    )
    mean: tuple[float, ...] | None = knob(
        None,
        "per-channel mean for normalisation (default: the model's pretrained_cfg, else the training images')",
        group="data",
    )
    std: tuple[float, ...] | None = knob(
        None, "per-channel std (default: as for --mean)", group="data", low=0, open_low=True
    )
    # optimisation
    epochs: int = knob(30, "training epochs", group="optimisation", low=1)
    batch_size: int = knob(128, "global batch size", group="optimisation", low=1)
    optimizer: str = knob(
        "sgd",
        "optimizer; muon: torch.optim.Muon on the conv filters (each as an out x in*k*k matrix), SGD on the rest",
        group="optimisation",
        choices=("sgd", "adam", "adamw", "muon"),
    )
    muon_lr: float = knob(
        0.24,
        "Muon's peak learning rate for the conv filters (airbench94_muon: 0.24)",
        group="optimisation",
        low=0,
        open_low=True,
    )
    muon_momentum: float = knob(
        0.6, "Muon's momentum (airbench94_muon: 0.6)", group="optimisation", low=0, high=1, open_high=True
    )
    muon_normalize: bool = knob(
        False,
        "rescale each conv filter bank to norm sqrt(out channels) before its Muon step (airbench94_muon)",
        group="optimisation",
    )
    muon_weight_decay: float = knob(
        0.0, "Muon's decoupled weight decay on the conv filters", group="optimisation", low=0
    )
    lr: float = knob(0.1, "peak learning rate", group="optimisation", low=0)
    momentum: float = knob(0.9, "SGD momentum", group="optimisation", low=0, high=1, open_high=True)
    nesterov: bool = knob(True, "Nesterov momentum", group="optimisation")
    weight_decay: float = knob(5e-4, "weight decay", group="optimisation", low=0)
    decay_norm_bias: bool = knob(
        False, "weight decay on norm parameters and biases too (off: exempt, timm's default)", group="optimisation"
    )
    decoupled_wd: bool = knob(
        False, "weight decay follows the schedule but not each group's learning rate", group="optimisation"
    )
    norm_lr_scale: float = knob(
        1.0,
        "learning-rate multiplier for norm-layer parameters (airbench: 64)",
        group="optimisation",
        low=0,
        open_low=True,
    )
    freeze_norm_scale: bool = knob(False, "norm weights (gamma) stay at their initial value", group="optimisation")
    schedule: str = knob(
        "onecycle",
        "learning-rate schedule (zoo.engine.optim.lr_factor)",
        group="optimisation",
        choices=("onecycle", "linear", "cosine", "step", "constant"),
    )
    warmup_epochs: float = knob(
        0.0, "linear warmup length in epochs (onecycle: 0 means 25%)", group="optimisation", low=0
    )
    warmup_start_factor: float = knob(
        0.01, "learning rate at step 0, as a fraction of the peak", group="optimisation", low=0, high=1, open_low=True
    )
    final_lr_factor: float = knob(
        0.0,
        "learning rate at the last step of the linear schedule, fraction of the peak",
        group="optimisation",
        low=0,
        high=1,
    )
    label_smoothing: float = knob(0.0, "cross-entropy against smoothed targets", group="optimisation", low=0, high=1)
    grad_clip: float | None = knob(
        None, "clip the gradient norm", group="optimisation", low=0, open_low=True, metavar="NORM"
    )
    ema: bool = knob(False, "evaluate and save an exponential moving average of the weights", group="optimisation")
    ema_decay: float = knob(
        0.999, "EMA decay per step", group="optimisation", low=0, high=1, open_low=True, open_high=True
    )
    lookahead: bool = knob(
        False, "every few steps pull the weights to a slow average of them (airbench)", group="optimisation"
    )
    lookahead_every: int = knob(5, "lookahead interval in steps", group="optimisation", low=1, metavar="STEPS")
    lookahead_decay: float = knob(
        0.95,
        "lookahead decay per step; ramps in as (step / total)^3",
        group="optimisation",
        low=0,
        high=1,
        open_low=True,
        open_high=True,
    )
    data_init: int = knob(
        0,
        "initialise the model from N training images if it supports it (init_from_data, e.g. airbench's whitening)",
        group="optimisation",
        low=0,
        metavar="N",
    )
    freeze: dict[str, int] = knob(
        {},
        "stop training these submodules after this many epochs each, as JSON {name: epochs}: '{\"stem\": 3}' is "
        "airbench's; freezing early layers late in a run (FreezeOut) also saves their share of the backward pass",
        group="optimisation",
        low=0,
        metavar="JSON",
    )
    # distillation
    teacher: str | None = knob(
        None,
        "learn from this frozen model's softened predictions too: NAME.TAG of published "
        "weights or a zoo .safetensors file",
        group="distillation",
        metavar="NAME.TAG|FILE",
    )
    distill_weight: float = knob(
        0.5,
        "loss = (1 - W) * task loss + W * T^2 * KL(teacher || student)",
        group="distillation",
        low=0,
        high=1,
        metavar="W",
    )
    distill_temperature: float = knob(
        4.0, "softmax temperature T", group="distillation", low=0, open_low=True, metavar="T"
    )
    # distributed
    sync_bn: bool = knob(
        False,
        "BatchNorm statistics over the global batch (off: per-rank statistics, averaged over "
        "ranks before every evaluation and save)",
        group="distributed",
    )
    # machine
    device: str = knob(
        "auto", "auto | cpu | cuda | cuda:N | mps (auto: cuda, then mps, then cpu)", group="machine", resume=True
    )
    precision: str = knob(
        "auto",
        "autocast dtype (auto: bf16 on bf16-capable CPUs/GPUs, fp16 on older GPUs)",
        group="machine",
        choices=("auto", "fp32", "bf16", "fp16"),
        resume=True,
    )
    muon_precision: str = knob(
        "auto",
        "dtype of Muon's Newton-Schulz iteration (auto: bf16, as torch.optim.Muon fixes it, except on a CPU or GPU "
        "without bf16 units, where bf16 is emulated: fp32 was 24x faster on an AVX2 CPU)",
        group="machine",
        choices=("auto", "fp32", "bf16"),
        resume=True,
    )
    channels_last: bool = knob(True, "NHWC memory format", group="machine")
    compile: bool = knob(False, "torch.compile the model (and the teacher)", group="machine", resume=True)
    threads: int | None = knob(None, "torch CPU threads (default: torch's choice)", group="machine", low=1, resume=True)
    seed: int = knob(0, "seed of every random draw", group="machine", low=0)
    # output
    out: str = knob("runs", "parent folder of run folders", group="output")
    run_name: str | None = knob(None, "run folder name (default: MODEL-DATE-TIME)", group="output", flag="--name")
    checkpoint_every: int = knob(
        1, "checkpoint interval in epochs", group="output", low=1, metavar="EPOCHS", resume=True
    )
    progress: bool = knob(True, "tqdm progress bars", group="output", resume=True)
    plot: bool = knob(True, "redraw curves.png after each epoch (needs matplotlib)", group="output", resume=True)
    logger: str = knob(
        "none",
        "also log every metrics.csv value (losses, accuracies, learning rate, images/s) per epoch to "
        "RUN_DIR/tensorboard (needs: pip install 'zoo[tensorboard]')",
        group="output",
        choices=("none", "tensorboard"),
        resume=True,
    )
    eval_batch_size: int = knob(1000, "evaluation batch size", group="output", low=1, resume=True)
    final_test: bool | None = knob(
        None,
        "evaluate the test split at the end (default: only without --val-split, so a run that chooses a recipe on "
        "held-out images leaves the test split to the final run)",
        group="output",
        resume=True,
    )
    tta: int = knob(
        0,
        "also report the final test (and validation) accuracy with test-time augmentation: 1 (or no value) mirror, 2 "
        "mirror + 1-pixel translations",
        group="output",
        choices=(0, 1, 2),
        const=1,
        metavar="LEVEL",
        resume=True,
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def frozen_at(self, epoch: int) -> tuple[str, ...]:
        """The submodules of ``freeze`` that no longer train in (0-based) epoch ``epoch``."""
        return tuple(sorted(name for name, epochs in self.freeze.items() if epoch >= epochs))

    def validate(self) -> TrainConfig:
        """Raise `ConfigError` naming every field whose value has the wrong type or is out of range."""
        problems = [p for f in dataclasses.fields(self) if (p := _check(f, getattr(self, f.name)))]
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            problems.append(f"mean and std must have one value per channel each, got {self.mean!r} and {self.std!r}")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))
        return self


_TYPES = typing.get_type_hints(TrainConfig)
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
CHOICES = {name: f.metadata["choices"] for name, f in FIELDS.items() if f.metadata["choices"]}
RESUME_OVERRIDES = tuple(name for name, f in FIELDS.items() if f.metadata["resume"])


def field_type(name: str) -> tuple[type, bool]:
    """The base type of field ``name`` (bool, int, float, str, tuple or dict) and whether it may be None."""
    hint = _TYPES[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    return typing.get_origin(base) or base, optional


def field_flag(name: str) -> str:
    """The command-line flag of field ``name`` (``""`` for the positional MODEL)."""
    flag = FIELDS[name].metadata["flag"]
    return flag if flag is not None else "--" + name.replace("_", "-")


def expected(name: str) -> str:
    """What field ``name`` takes, in words (for errors and the docs table)."""
    meta, (kind, optional) = FIELDS[name].metadata, field_type(name)
    if meta["choices"]:
        text = "one of " + ", ".join(map(str, meta["choices"]))
    elif kind is bool:
        text = "true or false"
    elif kind in (int, float):
        text = "an integer" if kind is int else "a number"
        lo, hi = meta["low"], meta["high"]
        if lo is not None and hi is not None:
            text = f"in {'(' if meta['open_low'] else '['}{lo:g}, {hi:g}{')' if meta['open_high'] else ']'}"
            text = ("an integer " if kind is int else "") + text
        elif lo is not None:
            text += f" {'>' if meta['open_low'] else '>='} {lo:g}"
    elif kind is tuple and "float" in str(_TYPES[name]):
        text = "one finite number per channel"
        if meta["low"] is not None:
            text += f", each {'>' if meta['open_low'] else '>='} {meta['low']:g}"
        return ("None or " if optional else "") + text
    elif kind is tuple:
        text = "a list of names"
    elif kind is dict and typing.get_args(_TYPES[name])[1] is int:
        text = f"a JSON object of names to integers >= {meta['low']:g}"
    elif kind is dict:
        text = "a JSON object"
    else:
        text = "a string"
    return text + (" or None" if optional else "")


def _in_range(value: float, meta: dict[str, Any]) -> bool:
    lo, hi = meta["low"], meta["high"]
    if lo is not None and (value < lo or (meta["open_low"] and value == lo)):
        return False
    return hi is None or not (value > hi or (meta["open_high"] and value == hi))


def _check(f: dataclasses.Field, value: Any) -> str | None:
    """The problem with ``value`` for field ``f``, or None."""
    kind, optional = field_type(f.name)
    meta = f.metadata
    if value is None:
        return None if optional else f"{f.name} must be {expected(f.name)}, got None"
    if meta["choices"]:
        ok = value in meta["choices"] and isinstance(value, str) == isinstance(meta["choices"][0], str)
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and _in_range(value, meta)
    elif kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ok = number and _in_range(value, meta)
    elif kind is tuple:
        numbers = "float" in str(_TYPES[f.name])
        items_ok = all(
            (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and _in_range(v, meta))
            if numbers
            else (isinstance(v, str) and v != "")
            for v in value
        )
        ok = isinstance(value, tuple) and len(value) > 0 and items_ok
    elif kind is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
        if ok and typing.get_args(_TYPES[f.name])[1] is int:
            ok = all(isinstance(v, int) and not isinstance(v, bool) and _in_range(v, meta) for v in value.values())
    else:
        ok = isinstance(value, str) and (value.strip() != "" or f.name == "model")
    return None if ok else f"{f.name} must be {expected(f.name)}, got {value!r}"


# Named recipes: partial configs applied over the model's registry recipe.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    # The study notebook, exactly: Adam 1e-4, batch 4, no augmentation, mean/std 0.5, 100 epochs, fp32.
    "notebook": {
        "optimizer": "adam",
        "lr": 1e-4,
        "batch_size": 4,
        "epochs": 100,
        "schedule": "constant",
        "weight_decay": 0.0,
        "crop": 0,
        "flip": False,
        "cutout": 0,
        "label_smoothing": 0.0,
        "decay_norm_bias": True,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "precision": "fp32",
        "channels_last": False,
        "ema": False,
    },
}
# airbench94's hyperparameters (Jordan 2024), in zoo's terms: its learning rate 11.5 "per 1024 examples" on a
# summed loss with momentum 0.85 is 11.5 / (1 + 1 / (1 - 0.85)) = 1.5 on a mean loss; its decoupled weight
# decay 0.0153 per 1024 examples is 0.0153 / 7.667 = 0.0020 per step at the peak learning rate.
RECIPES["fast"] = {
    "optimizer": "sgd",
    "batch_size": 1024,
    "epochs": 10,
    "lr": 1.5,
    "momentum": 0.85,
    "nesterov": True,
    "weight_decay": 0.0153 / (1 + 1 / (1 - 0.85)),
    "decoupled_wd": True,
    "decay_norm_bias": True,
    "norm_lr_scale": 64.0,
    "freeze_norm_scale": True,
    "schedule": "linear",
    "warmup_epochs": 2.3,
    "warmup_start_factor": 0.2,
    "final_lr_factor": 0.07,
    "label_smoothing": 0.2,
    "crop": 2,
    "crop_mode": "reflect",
    "flip": True,
    "flip_mode": "alternate",
    "cutout": 0,
    "lookahead": True,
    "lookahead_every": 5,
    "lookahead_decay": 0.95,
    "data_init": 5000,
    "freeze": {"stem": 3},
    "tta": 2,
    "ema": False,
    "channels_last": True,
    "compile": False,
}


_RENAMED = {  # old name: (new name, value map)
    "no_decay_norm_bias": ("decay_norm_bias", lambda v: not v),
    "freeze_stem_epochs": ("freeze", lambda v: {} if v is None else {"stem": v}),
}

# Faster than "fast" on a CPU, where time is FLOPs: Muon on the conv filters (airbench94_muon's idea), each bank
# rescaled to norm sqrt(out channels) before its step as airbench94_muon does (unscaled, the filters grow 6-9x and
# a step turns them less and less), in 7 epochs instead of 10, the first at 24 pixels (progressive resizing), at
# batch 768 (a third more steps for the same FLOPs: a CPU's images/s hardly depends on the batch): 0.68x fast's
# FLOPs (docs/speed.md: the runs that chose it, and its side-by-side benchmark).
RECIPES["fastest"] = {
    **RECIPES["fast"],
    "batch_size": 768,
    "optimizer": "muon",
    "muon_lr": 0.12,
    "muon_momentum": 0.6,
    "muon_normalize": True,
    "epochs": 7,
    "warmup_epochs": 0.23 * 7,
    "resize_start": 24,
    "resize_epochs": 1,
}


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    """JSON/TOML/YAML lists become the tuples TrainConfig holds; renamed fields (old run.json files) their new
    names."""
    out = dict(values)
    for old, (new, convert) in _RENAMED.items():
        if old in out:
            out[new] = convert(out.pop(old))
    for key, value in list(out.items()):
        if key in FIELDS and field_type(key)[0] is tuple and isinstance(value, list):
            out[key] = tuple(value)
    return out


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON, TOML or YAML file of TrainConfig fields (a run's ``run.json`` works too: its ``config`` is used)."""
    path = Path(path)
    readers = {".json": json.loads, ".toml": tomllib.loads, ".yaml": yaml.safe_load, ".yml": yaml.safe_load}
    read = readers.get(path.suffix.lower())
    if read is None:
        raise ConfigError(f"--config {path}: expected a .json, .toml, .yaml or .yml file")
    try:
        data = read(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"--config {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of TrainConfig fields, got {type(data).__name__}")
    data = _normalise(data)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown config keys {unknown}; expected TrainConfig fields")
    return data


def build_config(
    model: str = "modern_gap_cnn", *, recipe: str = "default", overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of a run of ``model``, layered lowest first: TrainConfig's defaults, the model's registry recipe
    (when ``model`` is registered), the named ``recipe``, then ``overrides``. `zoo.train` builds its config here.

    Registry hints that are not TrainConfig fields (e.g. a wide ResNet's ``block_drop_rate``) become model kwargs.
    """
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    overrides = _normalise(dict(overrides or {}))
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; expected TrainConfig fields")
    try:
        hints = dict(model_info(model).recipe)
    except UnknownModelError:
        hints = {}  # a model given from Python: no registry recipe
    model_kwargs = {k: hints.pop(k) for k in list(hints) if k not in FIELDS}
    values: dict[str, Any] = {}
    for layer in (_normalise(hints), RECIPES[recipe], overrides):
        values.update(copy.deepcopy(layer))  # a run's dicts are its own: changing one changes no recipe
    given = values.pop("model_kwargs", None)
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"invalid training config: model_kwargs must be a JSON object, got {given!r}")
    model_kwargs.update(given or {})
    values.pop("model", None)
    return TrainConfig(model=model, model_kwargs=model_kwargs, **values).validate()


def resumed_config(saved: dict[str, Any], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config a run folder's ``run.json`` holds, with ``overrides`` of the fields in `RESUME_OVERRIDES` only:
    a resumed run may move (another machine, data folder, device) but trains what it was started with."""
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if fixed:
        raise ConfigError(
            f"a resumed run keeps the configuration in its run.json: {', '.join(fixed)} cannot change (only "
            f"{', '.join(RESUME_OVERRIDES)} can); start a new run to change them"
        )
    values = _normalise(saved)
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"run.json names settings this zoo does not have: {unknown}; resume with the zoo that wrote it"
        )
    return TrainConfig(**{**values, **overrides}).validate()
