"""The contract every zoo model follows (timm's): features, head, classifier reset, input checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx
import torch.nn as nn
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from ..errors import ConfigError
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
    block: Callable[..., nn.Module],
    layers: Sequence[int],
    widths: Sequence[int],
    in_chs: int,
    *,
    drop_path_rate: float = 0.0,
    reduction: int = 1,
) -> tuple[nn.Sequential, int, list[dict[str, Any]]]:
    """Stages of ``block(in_chs, out_chs, stride, drop_path=rate)``; the first block of every stage but the first
    strides by 2; stochastic depth grows linearly from 0 to ``drop_path_rate`` over the blocks (timm's rule).

    Returns the stages, their output width and their ``feature_info`` (``reduction`` at the first stage's input).
    """
    stages, info, total, index = [], [], sum(layers), 0
    for i, (depth, width) in enumerate(zip(layers, widths)):
        blocks = []
        for j in range(depth):
            rate = drop_path_rate * (index / max(total - 1, 1))  # the last block gets exactly drop_path_rate
            blocks.append(block(in_chs, width, 2 if i > 0 and j == 0 else 1, drop_path=rate))
            in_chs, index = width, index + 1
        reduction *= 2 if i > 0 else 1
        stages.append(nn.Sequential(*blocks))
        info.append({"num_chs": width, "reduction": reduction, "module": f"stages.{i}"})
    return nn.Sequential(*stages), in_chs, info


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
    """Base class with timm's model contract. Subclasses build ``self.head`` (a `ClassifierHead`), set
    ``feature_info`` (one dict per feature stage: ``num_chs``, ``reduction``, ``module``, the module whose output it
    is) and implement ``forward_features``; those with a ``checkpoint_stages`` attribute (the name of an
    ``nn.Sequential`` run through `run_stages`) support gradient checkpointing."""

    num_classes: int
    num_features: int
    in_chans: int
    head: ClassifierHead
    feature_info: list[dict[str, Any]]
    checkpoint_stages: str | None = None

    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.grad_checkpointing = False
        # zoo.create sets both: timm's keys (default_cfg is timm's alias) and zoo's own (builder kwargs, metrics)
        self.pretrained_cfg: dict[str, Any] = {}
        self.default_cfg = self.pretrained_cfg
        self.zoo_cfg: dict[str, Any] = {}

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits features (timm): ``num_features``, as no zoo head has a hidden layer."""
        return self.num_features

    @property
    def global_pool(self) -> str:
        return self.head.pool_type

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling, ``(N, num_features, h, w)``."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and classify it; ``pre_logits=True`` returns the pooled ``(N, num_features)``."""
        return self.head(x, pre_logits=pre_logits)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's feature API: the maps of the ``feature_info`` stages ``indices`` (all; an int n: the last n;
        negative from the end) and, unless ``intermediates_only``, the final ``forward_features`` output. The maps
        are what those modules output (the last stage's after its norm, where a model has one), so ``norm`` and
        ``stop_early`` change nothing; ``output_fmt`` must be NCHW."""
        if output_fmt != "NCHW":
            raise ValueError(f"zoo models give NCHW feature maps, not {output_fmt!r}")
        take, _ = feature_take_indices(len(self.feature_info), indices)
        found: dict[int, torch.Tensor] = {}
        hooks = [
            self.get_submodule(self.feature_info[i]["module"]).register_forward_hook(
                lambda _m, _args, out, i=i: found.__setitem__(i, out)
            )
            for i in set(take)
        ]
        try:
            final = self.forward_features(x)
        finally:
            for hook in hooks:
                hook.remove()
        intermediates = [found[i] for i in take]
        return intermediates if intermediates_only else (final, intermediates)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh classifier for ``num_classes`` (0: the model returns pooled features; with ``global_pool=""``
        the unpooled map); ``global_pool`` (``"avg"``, ``"max"``, ``""``) changes the pooling too."""
        self.head.reset(num_classes, global_pool)
        self.num_classes = num_classes

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the stages' activations in the backward pass instead of storing them (less memory, more time)."""
        if self.checkpoint_stages is None:
            raise ConfigError(f"{type(self).__name__} does not support gradient checkpointing")
        self.grad_checkpointing = enable

    def run_stages(self, stages: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """``stages(x)``, checkpointed stage by stage when gradient checkpointing is on and gradients are needed."""
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return checkpoint_seq(stages, x)
        return stages(x)

    def fuse(self) -> ZooModel:
        """Fold every foldable BatchNorm into its conv for inference (eval mode only); see `zoo.fuse_bn`."""
        from ..fuse import fuse_bn

        return fuse_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans)
        return self.forward_head(self.forward_features(x))
