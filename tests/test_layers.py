import functools

import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from zoo.layers import ClassifierHead, ConvBNAct, NormActConv, create_act, create_norm, get_norm_layer
from zoo.layers.create import ACT_NAMES

NORMS = ["batchnorm", "groupnorm", "layernorm", "layernorm2d", "instancenorm"]
ACTS = ["relu", "relu6", "silu", "gelu", "leaky_relu", "hardswish", "identity"]


@pytest.mark.parametrize("norm", NORMS)
def test_conv_bn_act_norms_normalise_and_drop_the_bias(norm):
    block = ConvBNAct(3, 16, norm_layer=norm)
    assert block.conv.bias is None
    assert [name for name, _ in block.named_children()] == ["conv", "bn", "act"]
    out = block(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 16, 8, 8)


def test_layernorm_normalises_over_c_h_w_and_layernorm2d_over_channels():
    x = torch.randn(2, 8, 4, 4) * 5 + 3
    ln = create_norm("layernorm", 8)
    y = ln(x)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    ln2d = create_norm("layernorm2d", 8)
    y2 = ln2d(x)
    assert torch.allclose(y2.mean(dim=1), torch.zeros(2, 4, 4), atol=1e-5)


def test_batchnorm_statistics_are_per_channel_over_batch_height_width():
    bn = create_norm("batchnorm", 4)
    y = bn(torch.randn(8, 4, 5, 5) * 3 + 2)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)


def test_groupnorm_adapts_groups_to_thin_layers():
    assert create_norm("groupnorm", 16).num_groups == 16
    assert create_norm("groupnorm", 64).num_groups == 32
    assert create_norm("groupnorm", 24).num_groups == 8


@pytest.mark.parametrize("act", ACTS)
def test_activations_by_name(act):
    block = ConvBNAct(3, 4, act_layer=act)
    assert block(torch.randn(1, 3, 4, 4)).shape == (1, 4, 4, 4)


@pytest.mark.parametrize("act", ACT_NAMES)
def test_activations_copy_nothing_for_the_backward_pass(act):
    # an in-place ReLU6 / SiLU / Hardswish / Mish saves a copy of its input (pytorch#95432): slower, no memory saved
    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    layer, ops = create_act(act), []
    x = torch.randn(4, 8, requires_grad=True) * 2.0
    with Ops():
        layer(x)
    assert not {"clone", "copy_"} & set(ops), ops


@pytest.mark.parametrize("norm", [None, "none", ""])
def test_no_norm_turns_conv_bias_on(norm):
    block = ConvBNAct(3, 4, norm_layer=norm, act_layer=None)
    assert block.conv.bias is not None
    assert isinstance(block.bn, nn.Identity) and isinstance(block.act, nn.Identity)


def test_class_and_partial_are_accepted():
    block = ConvBNAct(3, 8, norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3), act_layer=nn.SiLU)
    assert block.bn.eps == 1e-3 and isinstance(block.act, nn.SiLU)
    assert get_norm_layer(nn.GroupNorm) is nn.GroupNorm


@pytest.mark.parametrize(("k", "dilation", "pad"), [(1, 1, 0), (3, 1, 1), (5, 1, 2), (3, 2, 2)])
def test_padding_is_same_for_odd_kernels(k, dilation, pad):
    block = ConvBNAct(3, 4, k, dilation=dilation)
    assert block.conv.padding == (pad, pad)
    assert block(torch.randn(1, 3, 9, 9)).shape[-1] == 9


def test_stride_and_groups():
    block = ConvBNAct(8, 8, 3, stride=2, groups=8)
    assert block.conv.groups == 8 and block(torch.randn(1, 8, 8, 8)).shape == (1, 8, 4, 4)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown norm_layer 'batchnrom'.*batchnorm"):
        create_norm("batchnrom", 4)
    with pytest.raises(ValueError, match="unknown act_layer 'rleu'.*relu"):
        create_act("rleu")


def test_pre_activation_order():
    block = NormActConv(4, 8)
    assert [n for n, _ in block.named_children()] == ["bn", "act", "drop", "conv"]
    assert block.bn.num_features == 4 and block.conv.bias is None
    assert NormActConv(4, 8, norm_layer=None).conv.bias is not None  # nothing normalises after it: bias on
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(block(x), block.conv(block.pre_activation(x)))


def test_classifier_head():
    head = ClassifierHead(16, 10, drop_rate=0.5)
    x = torch.randn(2, 16, 4, 4)
    assert head(x).shape == (2, 10)
    assert head(x, pre_logits=True).shape == (2, 16)
    head.reset(0)
    assert head(x).shape == (2, 16) and isinstance(head.fc, nn.Identity)
    head.reset(5)
    assert head(x).shape == (2, 5)
    maxhead = ClassifierHead(16, 3, pool_type="max", bias=False, scale=0.5)
    assert maxhead.fc.bias is None
    with pytest.raises(ValueError, match="pool_type"):
        ClassifierHead(16, 3, pool_type="median")


def test_conv_bias_before_batchnorm_is_redundant():
    """In train mode BN subtracts each channel's batch mean, so a per-channel conv bias cannot change the output
    and gets a zero gradient; without BN the same bias does both (the test can fail)."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 10, 10)
    for norm, redundant in (("batchnorm", True), (None, False)):
        block = ConvBNAct(3, 6, 3, bias=True, norm_layer=norm, act_layer="relu").train()
        out = block(x)
        out.square().mean().backward()
        grad = block.conv.bias.grad
        with torch.no_grad():
            block.conv.bias.add_(torch.linspace(-3, 3, 6))
        shifted = block(x)
        if redundant:
            assert torch.allclose(shifted, out, atol=1e-5)
            assert grad.abs().max() < 1e-6
        else:
            assert not torch.allclose(shifted, out, atol=1e-3)
            assert grad.abs().max() > 1e-3
    # the running mean absorbs the bias, so eval mode is unaffected after the same training batches too
    blocks = [ConvBNAct(3, 6, 3, bias=True).train() for _ in range(2)]
    blocks[1].load_state_dict(blocks[0].state_dict())
    with torch.no_grad():
        blocks[1].conv.bias.add_(1.5)
    for block in blocks:
        block.bn.momentum = None  # cumulative average: after one batch the running mean is that batch's mean
        block(x)
        block.eval()
    assert torch.allclose(blocks[0](x), blocks[1](x), atol=1e-4)
