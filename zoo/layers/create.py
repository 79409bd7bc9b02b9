"""Norm and activation layers by name, class or partial, on top of timm's factories.

`get_norm_layer` / `get_act_layer` return a *callable that builds a layer* (a class or a partial),
or ``None`` when the layer should be dropped; `create_norm` / `create_act` build the module.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch.nn as nn
from timm.layers import GroupNorm1, LayerNorm2d
from timm.layers import get_act_layer as _timm_get_act_layer
from timm.layers import get_norm_layer as _timm_get_norm_layer

LayerType = str | type[nn.Module] | Callable[..., nn.Module] | None

__all__ = ["GroupNorm", "LayerType", "create_act", "create_norm", "get_act_layer", "get_norm_layer"]


class GroupNorm(nn.GroupNorm):
    """GroupNorm taking ``num_channels`` first (swappable with BatchNorm2d).

    Uses ``gcd(num_groups, num_channels)`` groups so that thin layers (16 or 24 channels) still work.
    """

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(math.gcd(num_groups, num_channels), num_channels, eps=eps, affine=affine)


class InstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm2d with a learnable per-channel affine, as the other norms have."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, affine=affine)


# zoo's own names first; anything else falls through to timm's table (rmsnorm2d, frozenbatchnorm2d, ...).
_NORMS: dict[str, Callable[..., nn.Module]] = {
    "batchnorm": nn.BatchNorm2d,
    "batchnorm2d": nn.BatchNorm2d,
    "bn": nn.BatchNorm2d,
    "groupnorm": GroupNorm,
    "gn": GroupNorm,
    "layernorm": GroupNorm1,  # over (C, H, W) with a per-channel affine, as in the GroupNorm paper
    "ln": GroupNorm1,
    "groupnorm1": GroupNorm1,
    "layernorm2d": LayerNorm2d,  # over channels only, at every pixel (ConvNeXt style)
    "instancenorm": InstanceNorm2d,
    "instancenorm2d": InstanceNorm2d,
    "in": InstanceNorm2d,
}
_NONE_NAMES = {"", "none", "identity"}
_ACT_ALIASES = {"hardswish": "hard_swish", "hardsigmoid": "hard_sigmoid", "leakyrelu": "leaky_relu", "swish": "silu"}
NORM_NAMES = tuple(sorted(_NORMS))
ACT_NAMES = ("relu", "relu6", "silu", "gelu", "leaky_relu", "hard_swish", "mish", "elu", "tanh", "identity")


def get_norm_layer(norm_layer: LayerType) -> Callable[..., nn.Module] | None:
    """Resolve a norm given as name, class or partial; ``None``/``"none"`` means no norm."""
    if norm_layer is None:
        return None
    if isinstance(norm_layer, str):
        key = norm_layer.lower().replace("-", "").replace("_", "")
        if key in _NONE_NAMES:
            return None
        if key in _NORMS:
            return _NORMS[key]
        try:
            return _timm_get_norm_layer(key)
        except KeyError:
            raise ValueError(
                f"unknown norm_layer {norm_layer!r}; expected one of {', '.join(NORM_NAMES)}, "
                "'none', a class or a partial"
            ) from None
    if isinstance(norm_layer, functools.partial) or callable(norm_layer):
        return norm_layer
    raise TypeError(f"norm_layer must be a name, class, partial or None, got {type(norm_layer).__name__}")


def get_act_layer(act_layer: LayerType) -> Callable[..., nn.Module] | None:
    """Resolve an activation given as name, class or partial; ``None``/``"none"`` means no activation."""
    if act_layer is None:
        return None
    if isinstance(act_layer, str):
        key = act_layer.lower().replace("-", "_")
        if key in _NONE_NAMES:
            return None
        key = _ACT_ALIASES.get(key, key)
        try:
            return _timm_get_act_layer(key)
        except KeyError:
            raise ValueError(
                f"unknown act_layer {act_layer!r}; expected one of {', '.join(ACT_NAMES)}, 'none', a class or a partial"
            ) from None
    if callable(act_layer):
        return act_layer
    raise TypeError(f"act_layer must be a name, class, partial or None, got {type(act_layer).__name__}")


def create_norm(norm_layer: LayerType, num_channels: int) -> nn.Module:
    """Build a norm over ``num_channels``, or ``nn.Identity`` when there is none."""
    layer = get_norm_layer(norm_layer)
    return nn.Identity() if layer is None else layer(num_channels)


# In place, these save a copy of their input for the backward pass (their gradient needs the input, which the op
# overwrites; pytorch/pytorch#95432), so while training the in-place form costs an extra pass over the activation
# and saves no memory. create_act builds them out of place; eval-time code may still set ``module.inplace``.
COPIES_WHEN_INPLACE: tuple[type[nn.Module], ...] = (nn.Hardtanh, nn.SiLU, nn.Hardswish, nn.Mish)  # Hardtanh: ReLU6


def create_act(act_layer: LayerType, inplace: bool = True) -> nn.Module:
    """Build an activation (in place where the class supports it and that saves work: not the `COPIES_WHEN_INPLACE`
    ones), or ``nn.Identity`` when there is none."""
    layer = get_act_layer(act_layer)
    if layer is None:
        return nn.Identity()
    if isinstance(layer, type) and issubclass(layer, COPIES_WHEN_INPLACE):
        inplace = False
    try:
        return layer(inplace=inplace)
    except TypeError:
        return layer()
