"""Post-activation ResNets for 32x32 inputs: He et al. 2016's CIFAR ResNets and the CIFAR ResNet-18."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ..layers import BasicBlock, ClassifierHead, ConvBNAct, LayerType
from ..registry import register_model
from ._base import ZooModel, init_weights, make_stages, sgd_recipe

__all__ = ["ResNet"]


class ResNet(ZooModel):
    """3x3 stem (no max-pool), stages of `BasicBlock` (first block of stages 2+ strides by 2), GAP head.

    Shortcuts that change shape are 1x1 conv + norm projections (option B). ``drop_path_rate`` is stochastic depth,
    growing linearly over the blocks.
    """

    checkpoint_stages = "stages"

    def __init__(
        self,
        layers: Sequence[int],
        widths: Sequence[int],
        *,
        stem_width: int | None = None,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "avg",
        zero_init_last: bool = False,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        stem_width = stem_width or widths[0]
        self.stem = ConvBNAct(in_chans, stem_width, 3, norm_layer=norm_layer, act_layer=act_layer)
        block = functools.partial(BasicBlock, norm_layer=norm_layer, act_layer=act_layer)
        self.stages, in_chs, stages_info = make_stages(block, layers, widths, stem_width, drop_path_rate=drop_path_rate)
        self.feature_info = [{"num_chs": stem_width, "reduction": 1, "module": "stem"}, *stages_info]
        self.num_features = in_chs
        self.head = ClassifierHead(in_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        init_weights(self, zero_init_last=zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(self.stages, self.stem(x))


_PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition (CIFAR-10 nets, option-B shortcuts)"
_CIFAR_RECIPE = sgd_recipe(epochs=60, label_smoothing=0.0)


def _cifar_resnet(depth: int, **kwargs: object) -> ResNet:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return ResNet(**({"layers": (n, n, n), "widths": (16, 32, 64)} | kwargs))  # the caller's kwargs win (timm's way)


@register_model(family="resnet", paper=_PAPER, recipe=_CIFAR_RECIPE)
def resnet20(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-20 (3 stages x 3 basic blocks, widths 16-32-64)."""
    return _cifar_resnet(20, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="resnet", paper=_PAPER, recipe=_CIFAR_RECIPE)
def resnet32(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-32 (3 x 5 basic blocks)."""
    return _cifar_resnet(32, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="resnet", paper=_PAPER, recipe=_CIFAR_RECIPE)
def resnet44(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-44 (3 x 7 basic blocks)."""
    return _cifar_resnet(44, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="resnet", paper=_PAPER, recipe=_CIFAR_RECIPE)
def resnet56(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-56 (3 x 9 basic blocks)."""
    return _cifar_resnet(56, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="resnet", paper=_PAPER, recipe=_CIFAR_RECIPE)
def resnet110(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-110 (3 x 18 basic blocks)."""
    return _cifar_resnet(110, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="resnet",
    paper="He et al. 2016; CIFAR variant with 3x3 stem and no max-pool (kuangliu)",
    recipe=sgd_recipe(),
)
def resnet18(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet:
    """ResNet-18 for 32x32 inputs: widths 64-128-256-512, 2 blocks per stage."""
    arch = {"layers": (2, 2, 2, 2), "widths": (64, 128, 256, 512)}
    return ResNet(**(arch | kwargs), num_classes=num_classes, in_chans=in_chans)
