"""BatchNorm folding for inference: an eval-mode BatchNorm is a fixed per-channel affine map, so it can be
folded into the bias-free conv before it (the conv gains a bias), removing a whole pass over the activations.

Modules that know their conv -> BatchNorm pairs implement ``fold_bn()``; `fuse_bn` calls them all, children
first. Pairs that
cannot be folded stay: a norm after an activation or a sum (pre-activation blocks), or a norm that is not a
BatchNorm (GroupNorm/LayerNorm statistics depend on the input).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_conv_bn", "fold_through_max_pool", "fuse_bn", "is_foldable"]


def is_foldable(norm: nn.Module) -> bool:
    """A BatchNorm with running statistics (what eval mode normalises with)."""
    return isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.track_running_stats


def fold_conv_bn(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d:
    """The conv with ``norm`` folded in (a new module); both must be in eval mode."""
    return fuse_conv_bn_eval(conv, norm)


def fuse_bn(model: nn.Module) -> nn.Module:
    """Fold every foldable eval-mode BatchNorm of ``model`` into its conv, in place; returns ``model``.

    Raises in train mode: folding uses the running statistics, which training would keep updating.
    """
    if model.training:
        raise RuntimeError(
            "fuse_bn needs an eval-mode model (call model.eval() first): folding uses BatchNorm's "
            "running statistics, which only eval mode normalises with"
        )
    for module in reversed(list(model.modules())):  # children before their parents
        fold = getattr(module, "fold_bn", None)
        if callable(fold):
            fold()
    cfg = getattr(model, "zoo_cfg", None)
    if isinstance(cfg, dict):
        cfg["fused"] = True
    return model


@torch.no_grad()
def fold_through_max_pool(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d | None:
    """Fold ``conv -> max-pool -> norm``: valid when every BN scale is positive (max commutes with it)."""
    scale = (
        norm.weight / torch.sqrt(norm.running_var + norm.eps)
        if norm.affine
        else 1 / torch.sqrt(norm.running_var + norm.eps)
    )
    if (scale <= 0).any():
        return None
    return fold_conv_bn(conv, norm)
