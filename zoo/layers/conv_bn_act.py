"""Conv -> norm -> activation (and the pre-activation order), the unit every zoo model is built from."""

from __future__ import annotations

import torch
import torch.nn as nn

from .create import LayerType, create_act, create_norm, get_norm_layer

__all__ = ["ConvBNAct", "NormActConv"]


def _conv(
    in_chs: int,
    out_chs: int,
    kernel_size: int,
    stride: int,
    groups: int,
    dilation: int,
    padding: int | None,
    bias: bool | None,
    norm_layer: LayerType,
) -> nn.Conv2d:
    """The blocks' conv: "same" padding for odd kernels unless given, a bias only when ``norm_layer`` is None."""
    if padding is None:
        padding = (kernel_size - 1) // 2 * dilation
    if bias is None:
        bias = get_norm_layer(norm_layer) is None
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias)


class ConvBNAct(nn.Module):
    """``conv -> bn -> act`` with children named ``conv``, ``bn``, ``act`` (stable weight keys).

    The conv has a bias only when nothing normalises after it (``norm_layer=None``), because a norm's
    mean subtraction cancels any per-channel constant: the bias would be a dead parameter.
    Padding defaults to ``(kernel_size - 1) // 2 * dilation`` ("same" for odd kernels at stride 1).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        *,
        dilation: int = 1,
        padding: int | None = None,
        bias: bool | None = None,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
    ) -> None:
        super().__init__()
        self.conv = _conv(in_chs, out_chs, kernel_size, stride, groups, dilation, padding, bias, norm_layer)
        self.bn = create_norm(norm_layer, out_chs)
        self.act = create_act(act_layer)

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fold_bn(self) -> None:
        """Fold an eval-mode BatchNorm into the conv (see `zoo.fuse_bn`)."""
        from ..fuse import fold_conv_bn, is_foldable

        if is_foldable(self.bn):
            self.conv, self.bn = fold_conv_bn(self.conv, self.bn), nn.Identity()


class NormActConv(nn.Module):
    """Pre-activation order ``bn -> act -> (dropout) -> conv`` (He et al. 2016, identity mappings; WRN's dropout),
    children ``bn``, ``act``, ``drop``, ``conv``. `pre_activation` is ``act(bn(x))`` alone, for blocks whose
    projection shortcut reads it. The conv has a bias only when nothing normalises after it (``norm_layer=None``).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        *,
        dilation: int = 1,
        padding: int | None = None,
        bias: bool | None = None,
        drop_rate: float = 0.0,
        norm_layer: LayerType = "batchnorm",
        act_layer: LayerType = "relu",
    ) -> None:
        super().__init__()
        self.bn = create_norm(norm_layer, in_chs)
        self.act = create_act(act_layer)
        self.drop = nn.Dropout(drop_rate) if drop_rate else nn.Identity()
        self.conv = _conv(in_chs, out_chs, kernel_size, stride, groups, dilation, padding, bias, norm_layer)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.drop(self.pre_activation(x)))
