"""MobileNetV2 (Sandler et al. 2018) with CIFAR strides: stride-1 stem and first stages (as chenyaofo's models)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..layers import ClassifierHead, ConvBNAct, InvertedResidual, LayerType
from ..registry import register_model
from ._base import ZooModel, init_weights, sgd_recipe

__all__ = ["MobileNetV2"]

# expansion t, output channels c, repeats n, first stride s; the 32x32 version keeps stride 1 until stage 3.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going below 90% of ``value`` (the paper's rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class MobileNetV2(ZooModel):
    """ConvBNAct stem, inverted residual stages, 1x1 ConvBNAct to ``num_features``, GAP + dropout + Linear.

    ``drop_path_rate`` is stochastic depth on the residual blocks, growing linearly over the blocks.
    """

    checkpoint_stages = "blocks"

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu6",
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.0,
        global_pool: str = "avg",
        zero_init_last: bool = False,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        in_chs = make_divisible(32 * width_mult)
        self.stem = ConvBNAct(in_chans, in_chs, 3, norm_layer=norm_layer, act_layer=act_layer)
        blocks, strides, total = [], [], sum(n for _, _, n, _ in _SETTINGS)
        for t, c, n, s in _SETTINGS:
            out_chs = make_divisible(c * width_mult)
            for i in range(n):
                rate = drop_path_rate * (len(blocks) / (total - 1))
                kw = {"norm_layer": norm_layer, "act_layer": act_layer, "drop_path": rate}
                blocks.append(InvertedResidual(in_chs, out_chs, s if i == 0 else 1, t, **kw))
                strides.append(s if i == 0 else 1)
                in_chs = out_chs
        self.blocks = nn.Sequential(*blocks)
        self.num_features = make_divisible(1280 * max(1.0, width_mult))
        self.conv_head = ConvBNAct(in_chs, self.num_features, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        # a feature stage ends with the last block before each stride-2 block; conv_head ends the last one
        self.feature_info, reduction = [], 1
        for i, block in enumerate(blocks[:-1]):
            if strides[i + 1] == 2:
                self.feature_info.append(
                    {"num_chs": block.conv_pwl.out_channels, "reduction": reduction, "module": f"blocks.{i}"}
                )
                reduction *= 2
        self.feature_info.append({"num_chs": self.num_features, "reduction": reduction, "module": "conv_head"})
        init_weights(self, zero_init_last=zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(self.run_stages(self.blocks, self.stem(x)))


_PAPER = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks (CIFAR strides, chenyaofo)"
_RECIPE = sgd_recipe(epochs=60, weight_decay=4e-4)


@register_model(family="mobilenetv2", paper=_PAPER, recipe=_RECIPE)
def mobilenetv2_x0_5(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> MobileNetV2:
    """MobileNetV2, width multiplier 0.5 (the 1280-channel head keeps its width)."""
    return MobileNetV2(**({"width_mult": 0.5} | kwargs), num_classes=num_classes, in_chans=in_chans)


@register_model(family="mobilenetv2", paper=_PAPER, recipe=_RECIPE)
def mobilenetv2_x1_0(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> MobileNetV2:
    """MobileNetV2, width multiplier 1.0."""
    return MobileNetV2(**({"width_mult": 1.0} | kwargs), num_classes=num_classes, in_chans=in_chans)


@register_model(family="mobilenetv2", paper=_PAPER, recipe=_RECIPE)
def mobilenetv2_x1_4(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> MobileNetV2:
    """MobileNetV2, width multiplier 1.4 (head widened to 1792)."""
    return MobileNetV2(**({"width_mult": 1.4} | kwargs), num_classes=num_classes, in_chans=in_chans)
