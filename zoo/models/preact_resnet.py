"""Pre-activation ResNets (He et al. 2016, identity mappings): norm -> act -> conv in every block."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..layers import ClassifierHead, LayerType, PreActBasicBlock, create_act, create_norm, get_norm_layer
from ..registry import register_model
from ._base import ZooModel, init_weights, make_stages, sgd_recipe

__all__ = ["PreActResNet"]


class PreActResNet(ZooModel):
    """3x3 conv stem, stages of `PreActBasicBlock`, a final norm -> act, GAP head.

    The final norm/act (``final_norm``, ``final_act``) completes the last block's pre-activation, as in the
    identity-mappings and wide-ResNet papers. ``block_drop_rate`` is the dropout between a block's convs,
    ``drop_path_rate`` stochastic depth growing linearly over the blocks.
    """

    checkpoint_stages = "stages"

    def __init__(
        self,
        layers: Sequence[int],
        widths: Sequence[int],
        *,
        stem_width: int = 64,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        block_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans)
        self.stem = nn.Conv2d(in_chans, stem_width, 3, 1, 1, bias=get_norm_layer(norm_layer) is None)
        block = functools.partial(
            PreActBasicBlock, norm_layer=norm_layer, act_layer=act_layer, drop_rate=block_drop_rate
        )
        self.stages, in_chs, stages_info = make_stages(block, layers, widths, stem_width, drop_path_rate=drop_path_rate)
        self.final_norm = create_norm(norm_layer, in_chs)
        self.final_act = create_act(act_layer)
        # the last stage's map is the one after the final norm and activation, which complete its pre-activation
        self.feature_info = [
            {"num_chs": stem_width, "reduction": 1, "module": "stem"},
            *stages_info[:-1],
            {**stages_info[-1], "module": "final_act"},
        ]
        self.num_features = in_chs
        self.head = ClassifierHead(in_chs, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        init_weights(self)

    def fold_bn(self) -> None:
        """Fold the first block's first norm into the stem when nothing else reads the stem's output.

        That holds when the first block has a projection shortcut (it reads the pre-activated input, as in the
        wide ResNets); with an identity shortcut the raw stem output is added back and that norm must stay.
        """
        from ..fuse import fold_conv_bn, is_foldable

        first = self.stages[0][0]
        if first.shortcut is not None and is_foldable(first.conv1.bn):
            self.stem, first.conv1.bn = fold_conv_bn(self.stem, first.conv1.bn), nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_act(self.final_norm(self.run_stages(self.stages, self.stem(x))))


@register_model(
    family="preact_resnet",
    paper="He et al. 2016, Identity Mappings in Deep Residual Networks (CIFAR stem as in kuangliu/pytorch-cifar)",
    recipe=sgd_recipe(),
)
def preact_resnet18(*, num_classes: int = 10, in_chans: int = 3, **kwargs: object) -> PreActResNet:
    """Pre-activation ResNet-18: widths 64-128-256-512, 2 blocks per stage."""
    arch = {"layers": (2, 2, 2, 2), "widths": (64, 128, 256, 512)}  # defaults: the caller's kwargs win (timm's way)
    return PreActResNet(**(arch | kwargs), num_classes=num_classes, in_chans=in_chans)
