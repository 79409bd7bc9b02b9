"""Reusable building blocks: norm/act factories, ConvBNAct, classifier heads, residual blocks."""

from .blocks import BasicBlock, InvertedResidual, PreActBasicBlock
from .conv_bn_act import ConvBNAct, NormActConv
from .create import LayerType, create_act, create_norm, get_act_layer, get_norm_layer
from .head import ClassifierHead

__all__ = [
    "BasicBlock",
    "ClassifierHead",
    "ConvBNAct",
    "InvertedResidual",
    "LayerType",
    "NormActConv",
    "PreActBasicBlock",
    "create_act",
    "create_norm",
    "get_act_layer",
    "get_norm_layer",
]
