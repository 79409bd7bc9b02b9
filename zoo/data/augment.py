"""Batched, on-device augmentation of uint8 NCHW batches, as a list of registered ops.

An op is ``op(x, cfg, ctx) -> x``: a uint8 ``(N, C, H, W)`` batch, the run's config (an op reads its own options
from it, e.g. ``cfg.crop``) and a `BatchContext` holding the step's ``torch.Generator`` (seeded by seed, epoch and
step, so a run is reproducible and resumable step by step) and the batch's image indices. Adding an op is one
function and `register_augmentation`; ``--augment crop,flip,NAME`` (``TrainConfig.augment``) then uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = [
    "AUGMENTATIONS",
    "Augment",
    "BatchContext",
    "alternating_flip_mask",
    "batch_crop",
    "batch_cutout",
    "batch_flip",
    "default_augmentations",
    "normalize",
    "register_augmentation",
]


def batch_flip(x: torch.Tensor, generator: torch.Generator, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror a random half of the batch horizontally, or the images where ``mask`` (bool, one per image) is set."""
    if mask is None:
        mask = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


def alternating_flip_mask(indices: torch.Tensor, epoch: int, seed: int, num_images: int) -> torch.Tensor:
    """airbench's alternating flip: image ``i`` is mirrored at random in the first epoch, then every other epoch.

    Over any two consecutive epochs each image is seen once each way, where independent coin flips would show
    a quarter of the images the same way twice. Depends only on (seed, image, epoch), so a resumed run agrees.
    """
    return _first_flips(seed, num_images, indices.device)[indices] ^ bool(epoch % 2)


@functools.lru_cache(maxsize=4)
def _first_flips(seed: int, num_images: int, device: torch.device) -> torch.Tensor:
    """The first epoch's coin per image, drawn once per run (not in every training step)."""
    return (torch.rand(num_images, generator=torch.Generator().manual_seed(seed)) < 0.5).to(device)


def batch_crop(x: torch.Tensor, padding: int, generator: torch.Generator, mode: str = "reflect") -> torch.Tensor:
    """Pad by ``padding`` (``"reflect"`` or ``"zeros"``) and take a random same-size crop per image."""
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    if mode == "reflect":
        padded = F.pad(x.float() if x.dtype == torch.uint8 else x, (padding,) * 4, mode="reflect").to(x.dtype)
    else:
        padded = F.pad(x, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=generator.device).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + offsets[0][:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + offsets[1][:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def batch_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one random ``size`` x ``size`` square per image (DeVries & Taylor 2017); it may overhang the border."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator, device=generator.device).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=generator.device).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= (cy - size // 2)[:, None]) & (ys < (cy - size // 2 + size)[:, None])
    in_x = (xs >= (cx - size // 2)[:, None]) & (xs < (cx - size // 2 + size)[:, None])
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]
    return x.masked_fill(mask, 0)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x / 255 - mean) / std``, in channels_last memory format if asked."""
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    return (x.float().div_(255.0) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


@dataclass(frozen=True)
class BatchContext:
    """What an op may draw from or look at besides the batch: the step's generator and where the batch came from."""

    generator: torch.Generator
    indices: torch.Tensor  # the batch's positions in the training split
    epoch: int
    seed: int
    num_images: int  # of the training split


AugmentOp = Callable[[torch.Tensor, Any, BatchContext], torch.Tensor]
AUGMENTATIONS: dict[str, AugmentOp] = {}


def register_augmentation(name: str) -> Callable[[AugmentOp], AugmentOp]:
    """Register ``op(x, cfg, ctx) -> x`` under ``name``; a name that is taken is an error."""

    def decorator(op: AugmentOp) -> AugmentOp:
        if name in AUGMENTATIONS:
            raise ValueError(f"augmentation {name!r} is already registered")
        AUGMENTATIONS[name] = op
        return op

    return decorator


@register_augmentation("crop")
def _crop(x: torch.Tensor, cfg: Any, ctx: BatchContext) -> torch.Tensor:
    return batch_crop(x, cfg.crop, ctx.generator, cfg.crop_mode)


@register_augmentation("flip")
def _flip(x: torch.Tensor, cfg: Any, ctx: BatchContext) -> torch.Tensor:
    alternate = cfg.flip_mode == "alternate"
    mask = alternating_flip_mask(ctx.indices, ctx.epoch, ctx.seed, ctx.num_images) if alternate else None
    return batch_flip(x, ctx.generator, mask)


@register_augmentation("cutout")
def _cutout(x: torch.Tensor, cfg: Any, ctx: BatchContext) -> torch.Tensor:
    return batch_cutout(x, cfg.cutout, ctx.generator)


def resize_size(cfg: Any, epoch: int, full: int) -> int:
    """Progressive resizing: ``cfg.resize_start`` pixels in epoch 0, growing linearly to ``full`` by epoch
    ``cfg.resize_epochs`` (an even size: the CIFAR nets halve it twice)."""
    if not cfg.resize_start or epoch >= cfg.resize_epochs:
        return full
    size = cfg.resize_start + (full - cfg.resize_start) * epoch / cfg.resize_epochs
    return min(full, 2 * round(size / 2))


@register_augmentation("resize")
def _resize(x: torch.Tensor, cfg: Any, ctx: BatchContext) -> torch.Tensor:
    size = resize_size(cfg, ctx.epoch, x.shape[-1])
    if size >= x.shape[-1]:
        return x
    small = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return small.round_().clamp_(0, 255).to(torch.uint8)


def default_augmentations(cfg: Any) -> tuple[str, ...]:
    """The ops a config's classic options ask for: crop if ``crop``, flip if ``flip``, cutout if ``cutout``, then
    resize if ``resize_start`` (progressive resizing)."""
    ops = (("crop", cfg.crop), ("flip", cfg.flip), ("cutout", cfg.cutout), ("resize", cfg.resize_start))
    return tuple(name for name, on in ops if on)


class Augment:
    """The ops ``names`` (default: `default_augmentations`) applied in order to each training batch."""

    def __init__(self, cfg: Any, names: Sequence[str] | None = None) -> None:
        self.names = tuple(names if names is not None else cfg.augment or default_augmentations(cfg))
        unknown = [n for n in self.names if n not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"unknown augmentation {', '.join(unknown)}; registered: {', '.join(AUGMENTATIONS)}")
        self.cfg, self.ops = cfg, [AUGMENTATIONS[n] for n in self.names]

    def __call__(self, x: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        for op in self.ops:
            x = op(x, self.cfg, ctx)
        return x
