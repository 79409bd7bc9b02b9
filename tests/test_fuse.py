"""BatchNorm folding for every registered model: same outputs, no foldable BatchNorm left."""

import pytest
import torch
import torch.nn as nn
from graph import conv_norm_pairs
from test_models import MODELS

import zoo
from zoo.weights import WeightsError


def foldable_batchnorms(model):
    """BatchNorms fed by a conv (directly or through a max-pool) whose output nothing else reads."""
    return [norm for _, norm, single in conv_norm_pairs(model) if single and isinstance(norm, nn.BatchNorm2d)]


def _calibrated(name):
    """A model whose BN running statistics are the real statistics of a batch (eval outputs well scaled)."""
    torch.manual_seed(0)
    model = zoo.create(name).train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the exact statistics
            m.reset_running_stats()
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    with torch.no_grad():
        model(torch.randn(32, 3, 32, 32))
    return model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_fused_outputs_match_and_no_foldable_bn_remains(name):
    model = _calibrated(name)
    x = torch.randn(4, 3, 32, 32)
    ref = model(x)
    zoo.fuse_bn(model)
    assert (model(x) - ref).abs().max() <= 1e-4
    assert foldable_batchnorms(model) == []
    assert model.zoo_cfg["fused"] is True


def test_the_detector_sees_foldable_pairs_before_fusion():
    assert len(foldable_batchnorms(_calibrated("resnet20"))) == 21
    assert len(foldable_batchnorms(_calibrated("wrn16_4"))) == 7  # every conv2.bn, and the first conv1.bn (stem)


def test_pre_activation_keeps_what_cannot_be_folded():
    model = zoo.fuse_bn(_calibrated("preact_resnet18"))
    remaining = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(remaining) == 9  # each block's conv1.bn (after a sum or the identity-shared stem) and the final norm
    assert all(isinstance(b.conv2.bn, nn.Identity) for s in model.stages for b in s)
    wrn = zoo.fuse_bn(_calibrated("wrn16_4"))
    assert isinstance(wrn.stages[0][0].conv1.bn, nn.Identity)  # projection shortcut: the stem's output has one reader


def test_fuse_needs_eval_mode():
    with pytest.raises(RuntimeError, match="eval"):
        zoo.fuse_bn(zoo.create("resnet20"))


def test_fused_weights_round_trip(tmp_path):
    model = zoo.fuse_bn(_calibrated("resnet20"))
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "fused.safetensors"
    zoo.save_weights(model, path)
    rebuilt = zoo.load(path)
    assert rebuilt.zoo_cfg["fused"] and torch.equal(rebuilt(x), model(x))
    other = zoo.fuse_bn(zoo.create("resnet20").eval())
    zoo.load_weights(other, path)
    assert torch.equal(other(x), model(x))
    by_name = zoo.create("resnet20", weights=path)  # the header says fused: the model is built fused
    assert by_name.zoo_cfg["fused"] and torch.equal(by_name(x), model(x))
    with pytest.raises(WeightsError, match="BatchNorm-fused weights but the model is not fused"):
        zoo.load_weights(zoo.create("resnet20"), path)


def test_groupnorm_is_not_folded():
    model = zoo.create("resnet20", norm_layer="groupnorm").eval()
    zoo.fuse_bn(model)
    assert sum(isinstance(m, nn.GroupNorm) for m in model.modules()) > 0
