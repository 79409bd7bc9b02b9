"""Classifier heads: global pooling -> flatten -> dropout -> Linear."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ModelKwargsError

__all__ = ["ClassifierHead"]

_POOLS = {"avg": lambda: nn.AdaptiveAvgPool2d(1), "max": lambda: nn.AdaptiveMaxPool2d(1), "": nn.Identity}


def check_count(name: str, value: object, low: int) -> None:
    """A `ModelKwargsError` unless ``value`` is None or an integer >= ``low`` (a class or channel count)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ModelKwargsError(f"{name} must be an integer >= {low}, got {value!r}")


class ClassifierHead(nn.Module):
    """Global ``pool_type`` pooling (``"avg"``, ``"max"``, or ``""`` for none), flatten, dropout, then ``fc``.

    ``num_classes=0`` replaces ``fc`` by an identity so the head returns pooled features (with ``pool_type=""`` the
    unpooled map, timm's ``reset_classifier(0, "")``).
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
        self.in_features, self.bias, self.scale = in_features, bias, scale
        self.drop = nn.Dropout(drop_rate)
        self._set(num_classes, pool_type)

    def _set(self, num_classes: int, pool_type: str) -> None:
        check_count("num_classes", num_classes, 0)
        if pool_type not in _POOLS:
            raise ModelKwargsError(
                f"global_pool (pool_type) must be one of 'avg', 'max' or '' (none), got {pool_type!r}"
            )
        if pool_type == "" and num_classes:
            raise ModelKwargsError("global_pool='' (no pooling) leaves a feature map: it needs num_classes=0")
        self.num_classes, self.pool_type = num_classes, pool_type
        self.global_pool = _POOLS[pool_type]()
        self.flatten = nn.Flatten(1) if pool_type else nn.Identity()
        self.fc = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.in_features, num_classes, bias=self.bias) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int, pool_type: str | None = None) -> None:
        """A freshly initialised classifier for ``num_classes`` (0: features only), and ``pool_type`` if given."""
        device = next(self.parameters(), torch.empty(0)).device
        self._set(num_classes, self.pool_type if pool_type is None else pool_type)
        self.fc.to(device)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.flatten(self.global_pool(x)))
        if pre_logits or self.num_classes == 0:
            return x
        x = self.fc(x)
        return x * self.scale if self.scale != 1.0 else x
