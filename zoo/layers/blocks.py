"""Residual blocks built from the norm/act factories: post-activation, pre-activation, inverted residual."""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import DropPath

from .conv_bn_act import ConvBNAct, NormActConv
from .create import LayerType, create_act

__all__ = ["BasicBlock", "InvertedResidual", "PreActBasicBlock"]


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 ConvBNAct, 3x3 ConvBN, add the shortcut, then the activation.

    The shortcut is a 1x1 ConvBN projection when the shape changes (option B of He et al. 2016).
    ``zero_init_last()`` starts the residual branch at zero (Goyal et al. 2017): each block begins as identity.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_chs, out_chs, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvBNAct(out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        if stride != 1 or in_chs != out_chs:
            self.shortcut: nn.Module = ConvBNAct(in_chs, out_chs, 1, stride, norm_layer=norm_layer, act_layer=None)
        else:
            self.shortcut = nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()
        self.act = create_act(act_layer)

    def zero_init_last(self) -> None:
        zero_init_norm(self.conv2.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop_path(self.conv2(self.conv1(x))) + self.shortcut(x))


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, identity mappings; Zagoruyko & Komodakis 2016): two `NormActConv`,
    ``bn -> act -> conv`` then ``bn -> act -> dropout -> conv``, plus the shortcut. A projection shortcut is a
    bias-free 1x1 conv applied to the pre-activated input, as in both papers. ``drop_path`` is stochastic depth on
    the residual branch.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
        drop_rate: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = NormActConv(in_chs, out_chs, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = NormActConv(out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer, drop_rate=drop_rate)
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride, bias=False) if stride != 1 or in_chs != out_chs else None
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.conv1.pre_activation(x)
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return self.drop_path(self.conv2(self.conv1.conv(pre))) + shortcut

    def fold_bn(self) -> None:
        """Fold conv2's norm into conv1's conv; conv1's norm follows the previous block's sum and stays (see
        `PreActResNet.fold_bn`)."""
        from ..fuse import fold_conv_bn, is_foldable

        if is_foldable(self.conv2.bn):
            self.conv1.conv, self.conv2.bn = fold_conv_bn(self.conv1.conv, self.conv2.bn), nn.Identity()


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ConvBNAct), 3x3 depthwise (ConvBNAct), 1x1 linear projection (ConvBN)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        expand_ratio: int = 6,
        *,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu6",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid_chs = in_chs * expand_ratio
        self.use_residual = stride == 1 and in_chs == out_chs
        self.conv_pw = (
            ConvBNAct(in_chs, mid_chs, 1, norm_layer=norm_layer, act_layer=act_layer)
            if expand_ratio != 1
            else nn.Identity()
        )
        self.conv_dw = ConvBNAct(
            mid_chs, mid_chs, 3, stride, groups=mid_chs, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_pwl = ConvBNAct(mid_chs, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.drop_path = DropPath(drop_path) if drop_path and self.use_residual else nn.Identity()

    def zero_init_last(self) -> None:
        if self.use_residual:
            zero_init_norm(self.conv_pwl.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
        return self.drop_path(out) + x if self.use_residual else out


def zero_init_norm(norm: nn.Module) -> None:
    """Set a norm's scale to zero (no-op for norms without an affine scale)."""
    weight = getattr(norm, "weight", None)
    if isinstance(weight, torch.Tensor):
        nn.init.zeros_(weight)
