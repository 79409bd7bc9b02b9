"""The contract every zoo model follows (timm's): features, head, classifier reset, input checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx
import torch.nn as nn

from ..layers import ClassifierHead

__all__ = ["ZooModel", "check_input", "init_weights", "make_stages", "sgd_recipe"]


def check_input(x: torch.Tensor, in_chans: int) -> None:
    """Raise a clear error unless ``x`` is a float ``(N, in_chans, H, W)`` tensor.

    ``torch.fx`` records it as one call (see ``torch.fx.wrap`` below) instead of tracing its branches, so models
    stay symbolically traceable (``create_feature_extractor``) and still check their input when the graph runs.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a float tensor of shape (N, {in_chans}, H, W), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_chans or not x.is_floating_point():
        hint = " (add a batch dimension: x.unsqueeze(0))" if x.ndim == 3 else ""
        raise ValueError(
            f"expected a float tensor of shape (N, {in_chans}, H, W), got {x.dtype} tensor of shape "
            f"{tuple(x.shape)}{hint}. Convert uint8 images with x.float() / 255 and normalise them "
            "with the model's pretrained_cfg mean/std."
        )


torch.fx.wrap("check_input")


def sgd_recipe(
    *,
    lr: float = 0.1,
    batch_size: int = 128,
    epochs: int = 30,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    schedule: str = "onecycle",
    **extra: Any,
) -> dict[str, Any]:
    """Registry recipe hints for SGD with Nesterov momentum (what ``--recipe default`` trains with)."""
    return {
        "optimizer": "sgd",
        "lr": lr,
        "momentum": momentum,
        "nesterov": True,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "epochs": epochs,
        "schedule": schedule,
        **extra,
    }


def make_stages(
    block: Callable[[int, int, int], nn.Module], layers: Sequence[int], widths: Sequence[int], in_chs: int
) -> tuple[nn.Sequential, int]:
    """Stages of ``block(in_chs, out_chs, stride)``; the first block of every stage but the first strides by 2.

    Returns the stages and their output width.
    """
    stages = []
    for i, (depth, width) in enumerate(zip(layers, widths)):
        blocks = []
        for j in range(depth):
            blocks.append(block(in_chs, width, 2 if i > 0 and j == 0 else 1))
            in_chs = width
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), in_chs


def init_weights(model: nn.Module, *, zero_init_last: bool = False) -> None:
    """Kaiming-normal (fan_out) convs, unit/zero norms, small-normal linears: torchvision's ResNet init.

    ``zero_init_last`` then zeroes the last norm scale of every residual branch that supports it.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm | nn.InstanceNorm2d):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_last:
        for m in model.modules():
            if hasattr(m, "zero_init_last"):
                m.zero_init_last()


class ZooModel(nn.Module):
    """Base class: subclasses build ``self.head`` (a `ClassifierHead`) and implement ``forward_features``."""

    num_classes: int
    num_features: int
    in_chans: int
    head: ClassifierHead

    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        # zoo.create sets both: timm's keys (default_cfg is timm's alias) and zoo's own (builder kwargs, metrics)
        self.pretrained_cfg: dict[str, Any] = {}
        self.default_cfg = self.pretrained_cfg
        self.zoo_cfg: dict[str, Any] = {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling, ``(N, num_features, h, w)``."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and classify it; ``pre_logits=True`` returns the pooled ``(N, num_features)``."""
        return self.head(x, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one for ``num_classes`` (0 makes the model a feature extractor)."""
        self.head.reset(num_classes)
        self.num_classes = num_classes

    def fuse(self) -> ZooModel:
        """Fold every foldable BatchNorm into its conv for inference (eval mode only); see `zoo.fuse_bn`."""
        from ..fuse import fuse_bn

        return fuse_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans)
        return self.forward_head(self.forward_features(x))
