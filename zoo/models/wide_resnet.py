"""Wide ResNets (Zagoruyko & Komodakis 2016): pre-activation ResNets with widened stages."""

from __future__ import annotations

from ..registry import register_model
from ._base import sgd_recipe
from .preact_resnet import PreActResNet

__all__ = ["wide_resnet"]

_PAPER = "Zagoruyko & Komodakis 2016, Wide Residual Networks"
_RECIPE = sgd_recipe(epochs=200, schedule="step", block_drop_rate=0.3)


def wide_resnet(depth: int, widen_factor: int, **kwargs: object) -> PreActResNet:
    """WRN-depth-k: three stages of (depth - 4) / 6 blocks, widths 16k, 32k, 64k, 16-channel stem."""
    if (depth - 4) % 6:
        raise ValueError(f"wide ResNet depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
    arch = {"layers": (n, n, n), "widths": widths, "stem_width": 16}  # defaults: the caller's kwargs win
    return PreActResNet(**(arch | kwargs))


@register_model(family="wide_resnet", paper=_PAPER, recipe=_RECIPE)
def wrn16_4(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> PreActResNet:
    """WRN-16-4 (2 blocks per stage, widths 64-128-256)."""
    return wide_resnet(16, 4, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="wide_resnet", paper=_PAPER, recipe=_RECIPE)
def wrn28_10(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> PreActResNet:
    """WRN-28-10 (4 blocks per stage, widths 160-320-640)."""
    return wide_resnet(28, 10, num_classes=num_classes, in_chans=in_chans, **kwargs)
