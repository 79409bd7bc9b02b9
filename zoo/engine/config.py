"""TrainConfig: every knob of a training run, and the named recipes that fill it in."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

__all__ = ["CHOICES", "RECIPES", "RESUME_OVERRIDES", "TrainConfig", "build_config", "load_config_file"]

# The allowed values of the TrainConfig fields that take one of a few; the CLIs use them as argparse choices.
CHOICES: dict[str, tuple[Any, ...]] = {
    "optimizer": ("sgd", "adam", "adamw"),
    "schedule": ("onecycle", "linear", "cosine", "step", "constant"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "crop_mode": ("reflect", "zeros"),
    "flip_mode": ("random", "alternate"),
    "tta": (0, 1, 2),
}


@dataclass
class TrainConfig:
    """A training run. ``None`` fields are filled from the recipe, then from the model's registry hints."""

    model: str = "modern_gap_cnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # data
    dataset: str = "cifar10"  # cifar10 | cifar100 | folder:PATH
    data_dir: str | None = None
    download: bool = True
    val_split: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    crop: int = 4
    crop_mode: str = "reflect"
    flip: bool = True
    flip_mode: str = "random"  # random | alternate (airbench: random in epoch 1, then each image alternates)
    cutout: int = 0
    mean: tuple[float, ...] | None = None  # None: the model's pretrained_cfg mean/std
    std: tuple[float, ...] | None = None
    # optimisation
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None  # sgd | adam | adamw
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None
    no_decay_norm_bias: bool = True  # no weight decay on norm parameters and biases (timm's default)
    decoupled_wd: bool = False  # weight decay scaled by the schedule only, not by the group's learning rate
    norm_lr_scale: float = 1.0  # learning-rate multiplier for norm-layer parameters (airbench: 64 for BN biases)
    freeze_norm_scale: bool = False  # norm weights (gamma) stay at their initial value
    schedule: str | None = None  # onecycle | cosine | step | constant | linear
    warmup_epochs: float = 0.0
    warmup_start_factor: float = 0.01  # learning rate at step 0, as a fraction of the peak
    final_lr_factor: float = 0.0  # learning rate at the last step of the "linear" schedule, fraction of the peak
    label_smoothing: float | None = None
    grad_clip: float | None = None
    ema: bool = False
    ema_decay: float = 0.999
    lookahead: bool = False  # airbench's lookahead: every k steps pull the weights to a slow average of them
    lookahead_every: int = 5
    lookahead_decay: float = 0.95  # per step; ramps in as (step / total)^3
    data_init: int = 0  # images for the model's data-dependent init (init_from_data, e.g. patch whitening)
    freeze_stem_epochs: int | None = None  # freeze model.stem after this many epochs (airbench: 3)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch
    teacher: str | None = None  # knowledge distillation from NAME[.TAG] of published weights or a zoo weight file
    distill_weight: float = 0.5  # loss = (1 - w) * task loss + w * T^2 * KL(teacher || student)
    distill_temperature: float = 4.0
    # machine
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    compile: bool = False
    threads: int | None = None
    seed: int = 0
    # output
    out: str = "runs"
    run_name: str | None = None
    checkpoint_every: int = 1  # epochs
    progress: bool = True
    plot: bool = True  # redraw curves.png after each epoch
    eval_batch_size: int = 1000
    tta: int = 0  # also report the final test accuracy with TTA: 1 = mirror, 2 = mirror + 1-pixel translations

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Raise ValueError naming every field whose value is out of range (flag ``--a-b`` is field ``a_b``)."""
        problems: list[str] = []

        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                problems.append(f"{name} must be {expected}, got {getattr(self, name)!r}")

        def count(name: str, low: int, optional: bool = False) -> None:
            v = getattr(self, name)
            ok = (optional and v is None) or (isinstance(v, int) and not isinstance(v, bool) and v >= low)
            need(ok, name, f"an integer >= {low}" + (" or None" if optional else ""))

        def number(name: str, test: Any, expected: str, optional: bool = False) -> None:
            v = getattr(self, name)
            ok = optional and v is None
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                ok = bool(test(v))
            need(ok, name, expected + (" or None" if optional else ""))

        for f in dataclasses.fields(self):  # a config file's "false" or 0 would otherwise switch a flag on
            if f.type == "bool":
                need(isinstance(getattr(self, f.name), bool), f.name, "true or false")
        for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every", "lookahead_every"):
            count(name, 1)
        for name in ("crop", "cutout", "val_split", "data_init"):
            count(name, 0)
        for name in ("limit_train", "limit_test", "threads"):
            count(name, 1, optional=True)
        count("freeze_stem_epochs", 0, optional=True)
        number("lr", lambda v: v >= 0, "a number >= 0")
        number("momentum", lambda v: 0 <= v < 1, "in [0, 1)")
        number("weight_decay", lambda v: v >= 0, "a number >= 0")
        number("norm_lr_scale", lambda v: v > 0, "a number > 0")
        number("warmup_epochs", lambda v: v >= 0, "a number >= 0")  # longer than the run: the whole run warms up
        number("warmup_start_factor", lambda v: 0 < v <= 1, "in (0, 1]")
        number("final_lr_factor", lambda v: 0 <= v <= 1, "in [0, 1]")
        number("label_smoothing", lambda v: 0 <= v <= 1, "in [0, 1]")
        number("grad_clip", lambda v: v > 0, "a number > 0", optional=True)
        number("ema_decay", lambda v: 0 < v < 1, "in (0, 1)")
        number("lookahead_decay", lambda v: 0 < v < 1, "in (0, 1)")
        number("distill_weight", lambda v: 0 <= v <= 1, "in [0, 1]")
        number("distill_temperature", lambda v: v > 0, "a number > 0")
        need(
            self.teacher is None or (isinstance(self.teacher, str) and self.teacher.strip() != ""),
            "teacher",
            "None or NAME[.TAG] / a .safetensors path",
        )
        for name, options in CHOICES.items():
            need(getattr(self, name) in options, name, "one of " + ", ".join(map(str, options)))
        for name, low in (("mean", -math.inf), ("std", 0.0)):
            v = getattr(self, name)
            ok = v is None or (
                len(v) > 0 and all(isinstance(x, (int, float)) and math.isfinite(x) and x > low for x in v)
            )
            need(ok, name, "None or one finite number per channel" + (", each > 0" if low == 0 else ""))
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            problems.append(f"mean and std must have one value per channel each, got {self.mean!r} and {self.std!r}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
        return self


# The fields a resumed run may change: where and how it runs (a new machine, its data folder), not what it trains.
# Device, precision, threads and compile can change the floats, so such a run continues, but not bit for bit.
RESUME_OVERRIDES: tuple[str, ...] = (
    "data_dir",
    "download",
    "device",
    "precision",
    "threads",
    "compile",
    "progress",
    "plot",
    "eval_batch_size",
    "checkpoint_every",
    "tta",
)

# Named recipes: partial configs. "default" means "the model's own hints from the registry".
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
        "no_decay_norm_bias": False,
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
    "no_decay_norm_bias": False,
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
    "freeze_stem_epochs": 3,
    "tta": 2,
    "ema": False,
    "channels_last": True,
    "compile": False,
}
# Used where neither the recipe nor the model's registry hints say otherwise.
_FALLBACK = {
    "epochs": 30,
    "batch_size": 256,
    "optimizer": "sgd",
    "lr": 0.1,
    "weight_decay": 5e-4,
    "schedule": "onecycle",
    "label_smoothing": 0.0,
}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON or TOML file of TrainConfig fields (a run's ``run.json`` works too: its ``config`` is used)."""
    path = Path(path)
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if "config" in data and isinstance(data["config"], dict):
        data = data["config"]
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown config keys {unknown}; expected TrainConfig fields")
    return data


def build_config(
    model: str, *, recipe: str = "default", hints: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Layer, lowest first: fallbacks, the model's registry hints, the named ``recipe``, then ``overrides``.

    Hints that are not TrainConfig fields (e.g. a wide ResNet's ``block_drop_rate``) become model kwargs.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}")
    hints = dict(hints or {})
    model_kwargs = {k: hints.pop(k) for k in list(hints) if k not in _FIELDS}
    values: dict[str, Any] = {}
    for layer in (_FALLBACK, hints, RECIPES[recipe], overrides):
        values.update(layer)
    model_kwargs.update(values.pop("model_kwargs", {}) or {})
    values.pop("model", None)
    for key in ("mean", "std"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return TrainConfig(model=model, model_kwargs=model_kwargs, **values).validate()
