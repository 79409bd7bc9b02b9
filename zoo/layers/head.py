"""Classifier heads: global pooling -> flatten -> dropout -> Linear."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ClassifierHead"]

_POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}


class ClassifierHead(nn.Module):
    """Global ``pool_type`` pooling (``"avg"`` or ``"max"``), flatten, dropout, then ``fc``.

    ``num_classes=0`` replaces ``fc`` by an identity so the head returns pooled features.
    ``scale`` multiplies the logits (ResNet-9 and airbench use a fixed 1/8 or 1/9).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        pool_type: str = "avg",
        drop_rate: float = 0.0,
        bias: bool = True,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if pool_type not in _POOLS:
            raise ValueError(f"pool_type must be one of {sorted(_POOLS)}, got {pool_type!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.pool_type = pool_type
        self.bias = bias
        self.scale = scale
        self.global_pool = _POOLS[pool_type](1)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.in_features, num_classes, bias=self.bias) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0: features only)."""
        self.num_classes = num_classes
        device = next(self.parameters(), torch.empty(0)).device
        self.fc = self._make_fc(num_classes).to(device)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.flatten(self.global_pool(x)))
        if pre_logits or self.num_classes == 0:
            return x
        x = self.fc(x)
        return x * self.scale if self.scale != 1.0 else x
