"""Batched, on-device augmentation of uint8 NCHW batches: random crop (translate), flip, cutout.

Every op takes an explicit ``torch.Generator`` so that a run is reproducible and resumable step by step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Augment",
    "alternating_flip_mask",
    "batch_crop",
    "batch_cutout",
    "batch_flip",
    "normalize",
    "tta_logits",
    "tta_logits_per_level",
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
class Augment:
    """The training augmentation of a recipe: ``crop`` padding (0 = off), ``flip``, ``cutout`` size."""

    crop: int = 4
    crop_mode: str = "reflect"
    flip: bool = True
    cutout: int = 0

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator, flip_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Augment a uint8 batch; ``flip_mask`` replaces the random flip (see `alternating_flip_mask`)."""
        if self.crop:
            x = batch_crop(x, self.crop, generator, self.crop_mode)
        if self.flip:
            x = batch_flip(x, generator, flip_mask)
        if self.cutout:
            x = batch_cutout(x, self.cutout, generator)
        return x


def tta_logits(model: torch.nn.Module, x: torch.Tensor, level: int = 0) -> torch.Tensor:
    """Test-time augmentation of a normalised batch: 0 none, 1 mean with the mirror image, 2 airbench's mirror
    and 1-pixel translations (half weight on the image, a quarter on each reflect-padded diagonal shift)."""
    return tta_logits_per_level(model, x, level)[level]


def tta_logits_per_level(model: torch.nn.Module, x: torch.Tensor, level: int = 0) -> list[torch.Tensor]:
    """`tta_logits` of every level from 0 to ``level`` (index = level), from ``level``'s forward passes alone:
    each level reuses the one below it, so all of them cost what the highest costs."""
    if level not in (0, 1, 2):
        raise ValueError(f"TTA level must be 0, 1 or 2, got {level!r}")
    logits = [model(x).float()]
    if level >= 1:
        logits.append((logits[0] + model(x.flip(3)).float()) / 2)
    if level >= 2:
        h, w = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = [padded[:, :, :h, :w], padded[:, :, 2:, 2:]]
        shifted_logits = [(model(s).float() + model(s.flip(3)).float()) / 2 for s in shifted]
        logits.append(logits[1] / 2 + (shifted_logits[0] + shifted_logits[1]) / 4)
    return logits
