"""A third-party model for zoo: a small all-ConvBNAct network, registered as ``tiny_allconv``."""

from __future__ import annotations

import torch
import torch.nn as nn

import zoo
from zoo.layers import ClassifierHead, ConvBNAct, LayerType
from zoo.models import ZooModel


class TinyAllConv(ZooModel):
    """Three ConvBNAct stages (32-64-128, stride 2 after the first) and zoo's GAP head."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "silu",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        kw = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.features = nn.Sequential(
            ConvBNAct(in_chans, 32, **kw), ConvBNAct(32, 64, stride=2, **kw), ConvBNAct(64, 128, stride=2, **kw)
        )
        self.num_features = 128
        self.head = ClassifierHead(128, num_classes, drop_rate=drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@zoo.register_model(family="plugin_example", paper="zoo's plugin example")
def tiny_allconv(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> TinyAllConv:
    """A 3-layer all-convolutional net from zoo's blocks."""
    return TinyAllConv(num_classes=num_classes, in_chans=in_chans, **kwargs)
