"""ResNet-9 from David Page's DAWNBench CIFAR-10 entry ("How to train your ResNet", 2018)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..layers import ClassifierHead, ConvBNAct, LayerType
from ..registry import register_model
from ._base import ZooModel, init_weights, sgd_recipe

__all__ = ["ResNet9"]


class Residual(nn.Module):
    """``x + conv2(conv1(x))`` with two same-width ConvBNAct layers (no activation after the sum, as Page)."""

    def __init__(self, chs: int, *, norm_layer: LayerType, act_layer: LayerType) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(chs, chs, 3, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvBNAct(chs, chs, 3, norm_layer=norm_layer, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class ResNet9(ZooModel):
    """prep 64 -> [128, pool, res] -> [256, pool] -> [512, pool, res] -> global pool -> Linear x ``logit_scale``.

    The reference head is a global **max** pool, a bias-free Linear and logits scaled by 1/8 (Page's choice:
    it sharpens early training); ``global_pool="avg"`` gives the usual GAP head instead.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        global_pool: str = "max",
        logit_scale: float = 0.125,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        w0, w1, w2, w3 = widths
        kw = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.stem = ConvBNAct(in_chans, w0, 3, **kw)
        self.layer1 = nn.Sequential(ConvBNAct(w0, w1, 3, **kw), nn.MaxPool2d(2), Residual(w1, **kw))
        self.layer2 = nn.Sequential(ConvBNAct(w1, w2, 3, **kw), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(ConvBNAct(w2, w3, 3, **kw), nn.MaxPool2d(2), Residual(w3, **kw))
        self.num_features = w3
        self.feature_info = [
            {"num_chs": w, "reduction": 2**i, "module": m}
            for i, (w, m) in enumerate(zip(widths, ("stem", "layer1", "layer2", "layer3")))
        ]
        self.head = ClassifierHead(
            w3, num_classes, pool_type=global_pool, drop_rate=drop_rate, bias=False, scale=logit_scale
        )
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))


@register_model(
    family="resnet9",
    paper="Page 2018, How to Train Your ResNet (DAWNBench CIFAR-10 ResNet-9)",
    recipe=sgd_recipe(lr=0.4, batch_size=512, epochs=24, label_smoothing=0.2),
)
def resnet9(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> ResNet9:
    """Page's ResNet-9 (about 6.57 M parameters), max-pool head by default."""
    return ResNet9(num_classes=num_classes, in_chans=in_chans, **kwargs)
