"""What a run is made of before its first step: the data splits, and the model on its device with its input
normalisation, training precision policy and data-dependent init."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .._factory import create
from ..data import Split, carve, load_splits, normalize
from ..errors import ConfigError
from .config import TrainConfig
from .device import apply_training_precision_policy
from .distributed import DistContext, convert_sync_batchnorm
from .optim import norm_parameters

__all__ = ["PreparedModel", "RunRNG", "prepare_data", "prepare_model"]


class RunRNG:
    """The run's own random stream (the model's init, dropout): `fork` runs a block on it, the caller's RNG state
    is left as it was. Data order, crops and flips use generators seeded by (seed, epoch, step) instead."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed, self.devices = seed, [device] if device.type == "cuda" else []
        self.state: dict[str, torch.Tensor | None] | None = None  # None: not drawn from yet

    @contextlib.contextmanager
    def fork(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=self.devices):
            if self.state is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self.state["cpu"])
                if self.devices and self.state["cuda"] is not None:
                    torch.cuda.set_rng_state(self.state["cuda"], self.devices[0])
            try:
                yield
            finally:
                self.state = self.current()

    def current(self) -> dict[str, torch.Tensor | None]:
        """The stream's state now (inside `fork`: the run's; what a checkpoint holds)."""
        cuda = torch.cuda.get_rng_state(self.devices[0]) if self.devices else None
        return {"cpu": torch.get_rng_state(), "cuda": cuda}


def prepare_data(
    cfg: TrainConfig, data: Any, *, world_size: int = 1, progress: bool = True
) -> tuple[Split, Split | None, Split | None, int]:
    """``(train, val, test, n)`` for ``cfg`` from ``data`` (None: ``cfg.dataset``), ``n`` the training images before
    the validation split and ``--limit-train`` took theirs; checks the batch, crop and resizing fit them."""
    train, test = load_splits(
        data, dataset=cfg.dataset, data_dir=cfg.data_dir, download=cfg.download, progress=progress
    )
    n_train = len(train)
    train, val, test = carve(
        train, test, val_split=cfg.val_split, seed=cfg.seed, limit_train=cfg.limit_train, limit_test=cfg.limit_test
    )
    if len(train) < cfg.batch_size:
        raise ConfigError(f"batch size {cfg.batch_size} is larger than the {len(train)} training images")
    if cfg.batch_size % world_size:
        raise ConfigError(f"batch_size is the global batch: {cfg.batch_size} must divide by {world_size} processes")
    if cfg.crop_mode == "reflect" and cfg.crop >= min(train.images.shape[-2:]):
        raise ConfigError(
            f"--crop {cfg.crop} with reflect padding needs images larger than {cfg.crop} pixels, got "
            f"{tuple(train.images.shape[-2:])}: give a smaller --crop (0 = off) or --crop-mode zeros"
        )
    if cfg.resize_start and cfg.resize_start >= (side := min(train.images.shape[-2:])):
        raise ConfigError(f"resize_start must be below the training images' {side} pixels, got {cfg.resize_start}")
    return train, val, test, n_train


@dataclass
class PreparedModel:
    model: nn.Module
    mean: torch.Tensor  # what inputs are normalised with, on the device
    std: torch.Tensor
    registered: bool  # built from the registry, so zoo.load can rebuild its weights
    fp32_convs: int  # layers the precision policy computes in fp32


def prepare_model(
    cfg: TrainConfig,
    model: nn.Module | None,
    train: Split,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    dist: DistContext,
) -> PreparedModel:
    """``model`` (None: ``create(cfg.model)`` for the data's classes) on ``device``, ready for its optimizer.

    Normalisation: ``cfg.mean``/``cfg.std``, else the model's ``pretrained_cfg``, else the training images' own.
    Then, in order: SyncBatchNorm (torchrun), channels_last, the precision policy (a logged class change of the
    layers it names), frozen norm scales, the model's ``init_from_data`` (``cfg.data_init``).
    """
    classes = train.classes
    registered = model is None
    if model is None:
        swaps = {k: getattr(cfg, k) for k in ("norm_layer", "act_layer", "drop_rate") if getattr(cfg, k) is not None}
        model = create(cfg.model, num_classes=len(classes), **cfg.model_kwargs, **swaps)
    elif getattr(model, "num_classes", len(classes)) != len(classes):
        raise ConfigError(f"the model predicts {model.num_classes} classes, the data has {len(classes)}")
    own = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.mean or own.get("mean"), cfg.std or own.get("std")
    if mean is None or std is None:
        pixels = train.images.float().div_(255).transpose(0, 1).flatten(1)
        mean, std = mean or tuple(pixels.mean(1).tolist()), std or tuple(pixels.std(1).tolist())
    channels = train.images.shape[1]
    if len(mean) != channels or len(std) != channels:
        where = "the config's" if cfg.mean or cfg.std else "the model's pretrained_cfg"
        raise ConfigError(
            f"the images have {channels} channel(s) but the normalisation ({where} mean {tuple(mean)}, std "
            f"{tuple(std)}) has {len(mean)}: give mean and std with one value per channel (--mean/--std, or "
            "fit(..., mean=..., std=...))"
        )
    if registered:
        model.pretrained_cfg.update(label_names=tuple(classes), mean=tuple(mean), std=tuple(std))
    if cfg.sync_bn and dist.enabled:
        model = convert_sync_batchnorm(model, device.type)
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    fp32_convs = apply_training_precision_policy(model, device, amp_dtype)
    prepared = PreparedModel(
        model, torch.tensor(mean, device=device), torch.tensor(std, device=device), registered, fp32_convs
    )
    _prepare_parameters(cfg, prepared, train.images[: cfg.data_init].to(device), dist)
    return prepared


def _prepare_parameters(
    cfg: TrainConfig, prepared: PreparedModel, init_images: torch.Tensor, dist: DistContext
) -> None:
    """Before the optimizer sees them: frozen norm scales, data-dependent init; check the stem option."""
    model = prepared.model
    if cfg.freeze_norm_scale:
        scales = norm_parameters(model, weights_only=True)
        if any(bool((p == 0).any()) for p in scales):
            warnings.warn(
                f"freeze_norm_scale: {cfg.model} has norm scales initialised to zero (zero_init_last); "
                "frozen, those residual branches stay off. Build it with zero_init_last=False.",
                stacklevel=4,
            )
        for p in scales:
            p.requires_grad_(False)
    if cfg.data_init:
        if not callable(getattr(model, "init_from_data", None)):
            raise ConfigError(f"data_init: {cfg.model} has no init_from_data(images) method to call")
        model.init_from_data(normalize(init_images, prepared.mean, prepared.std, channels_last=False))
    if cfg.freeze:
        names = {name for name, _ in model.named_modules() if name}
        if missing := sorted(set(cfg.freeze) - names):
            children = ", ".join(name for name, _ in model.named_children())
            raise ConfigError(f"freeze: {cfg.model} has no submodule {missing[0]!r}; its top-level ones: {children}")
        if dist.enabled:
            raise ConfigError("freeze is not supported under torchrun (DDP needs fixed parameters)")
