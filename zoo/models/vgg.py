"""VGG with batch norm for 32x32 inputs: bias-free ConvBNAct stacks, max-pools, a GAP head (no 4096-wide FCs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..layers import ClassifierHead, ConvBNAct, LayerType
from ..registry import register_model
from ._base import ZooModel, init_weights, sgd_recipe

__all__ = ["VGG"]

# "M" is a 2x2 max-pool; five of them take 32x32 down to 1x1.
_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(ZooModel):
    """``features`` (ConvBNAct and max-pools in the order of ``cfg``), then a GAP + Linear head."""

    checkpoint_stages = "features"

    def __init__(
        self,
        cfg: Sequence[int | str],
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        layers: list[nn.Module] = []
        in_chs, reduction, self.feature_info = in_chans, 1, []
        for v in cfg:
            if v == "M":  # a feature stage ends before each pool
                self.feature_info.append(
                    {"num_chs": in_chs, "reduction": reduction, "module": f"features.{len(layers) - 1}"}
                )
                layers.append(nn.MaxPool2d(2))
                reduction *= 2
            else:
                layers.append(ConvBNAct(in_chs, int(v), 3, norm_layer=norm_layer, act_layer=act_layer))
                in_chs = int(v)
        self.feature_info.append({"num_chs": in_chs, "reduction": reduction, "module": f"features.{len(layers) - 1}"})
        self.features = nn.Sequential(*layers)
        self.num_features = in_chs
        self.head = ClassifierHead(in_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(self.features, x)


_PAPER = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks; with BN and a GAP head for CIFAR"
_RECIPE = sgd_recipe(lr=0.05)


@register_model(family="vgg", paper=_PAPER, recipe=_RECIPE)
def vgg11_bn(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> VGG:
    """VGG-11 with BN (8 convs)."""
    return VGG(**({"cfg": _CFGS["vgg11"]} | kwargs), num_classes=num_classes, in_chans=in_chans)


@register_model(family="vgg", paper=_PAPER, recipe=_RECIPE)
def vgg13_bn(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> VGG:
    """VGG-13 with BN (10 convs)."""
    return VGG(**({"cfg": _CFGS["vgg13"]} | kwargs), num_classes=num_classes, in_chans=in_chans)


@register_model(family="vgg", paper=_PAPER, recipe=_RECIPE)
def vgg16_bn(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> VGG:
    """VGG-16 with BN (13 convs)."""
    return VGG(**({"cfg": _CFGS["vgg16"]} | kwargs), num_classes=num_classes, in_chans=in_chans)


@register_model(family="vgg", paper=_PAPER, recipe=_RECIPE)
def vgg19_bn(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> VGG:
    """VGG-19 with BN (16 convs)."""
    return VGG(**({"cfg": _CFGS["vgg19"]} | kwargs), num_classes=num_classes, in_chans=in_chans)
