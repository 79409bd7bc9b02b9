"""Registry-wide tests: every registered model is checked the moment it is registered."""

import math

import pytest
import torch
import torch.nn as nn
from graph import conv_norm_pairs

import zoo
from zoo import _factory

BIG = {"wrn28_10", "vgg19_bn", "vgg16_bn", "preact_resnet18", "resnet18", "resnet110"}
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in zoo.list_models()]

# Parameter counts for 10 classes from the literature (the families issue's table).
REFERENCE_PARAMS = {
    "modern_gap_cnn": 77_130,
    "resnet20": 272_474,
    "resnet32": 466_906,
    "resnet44": 661_338,
    "resnet56": 855_770,
    "resnet110": 1_730_714,
    "preact_resnet18": 11_171_146,
    "resnet18": 11_173_962,
    "mobilenetv2_x0_5": 700_490,
    "mobilenetv2_x1_0": 2_236_682,
    "mobilenetv2_x1_4": 4_330_000,
    "wrn16_4": 2_750_000,
    "wrn28_10": 36_500_000,
    "resnet9": 6_570_000,
    "airbench94_net": 1_970_000,
}


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_and_contract(name):
    model = zoo.create(name)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, model.num_classes) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    feats = model.forward_features(x)
    assert feats.ndim == 4 and feats.shape[1] == model.num_features
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    assert torch.allclose(model.forward_head(feats), out, atol=1e-5) or model.training
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == name and cfg["input_size"] == (3, 32, 32)
    assert len(cfg["mean"]) == 3 and len(cfg["label_names"]) == 10


@pytest.mark.parametrize("name", MODELS)
def test_param_count_matches_model_info_and_literature(name):
    model = zoo.create(name)
    assert _params(model) == zoo.model_info(name).params
    if name in REFERENCE_PARAMS:
        assert _params(model) == pytest.approx(REFERENCE_PARAMS[name], rel=0.01)


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_zero_and_reset_classifier(name):
    model = zoo.create(name, num_classes=0).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, model.num_features)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7) and model.num_classes == 7
    for bad in (-3, 2.5, True):  # refused before anything changes
        with pytest.raises(zoo.errors.ModelKwargsError, match="num_classes must be an integer >= 0"):
            model.reset_classifier(bad)
    assert model(x).shape == (2, 7) and model.num_classes == 7


@pytest.mark.parametrize("name", MODELS)
def test_no_conv_before_a_norm_has_a_bias(name):
    model = zoo.create(name)
    pairs = conv_norm_pairs(model)
    assert pairs, "expected conv -> norm pairs"
    assert all(conv.bias is None for conv, _, _ in pairs)


@pytest.mark.parametrize("name", MODELS)
def test_norm_swap_leaves_no_batchnorm_and_trains(name):
    model = zoo.create(name, norm_layer="groupnorm")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", MODELS)
def test_safetensors_round_trip_gives_identical_outputs(name, tmp_path):
    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / f"{name}.safetensors"
    zoo.save_weights(model, path, metrics={"top1": 0.0})
    torch.manual_seed(1)
    other = zoo.create(name, weights=path).eval()
    assert torch.equal(model(x), other(x))
    rebuilt = zoo.load(path).eval()
    assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize("name", MODELS)
def test_channels_last_and_bf16_autocast(name):
    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(x.to(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model_cl(x.to(memory_format=torch.channels_last))
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float().argmax(1) == ref.argmax(1)).float().mean() >= 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_torch_export_with_dynamic_batch(name):
    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    for n in (1, 3):
        xi = torch.randn(n, 3, 32, 32)
        assert torch.allclose(program.module()(xi), model(xi), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_torch_compile_captures_one_graph(name):
    """Every model traces into a single graph (no graph breaks). The eager backend checks dynamo's capture alone
    (2.5-3x faster than aot_eager here); AOT tracing is covered by torch.export above, inductor once below."""
    torch._dynamo.reset()  # models share block classes: start each from an empty cache, below dynamo's recompile limit
    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert torch.allclose(compiled(x), model(x), atol=1e-5)


@pytest.mark.slow
def test_torch_compile_inductor():
    model = zoo.create("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model)
    assert torch.allclose(compiled(x), model(x), atol=1e-4)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(3, 32, 32), r"\(N, 3, H, W\).*batch dimension"),
        (torch.randn(2, 1, 32, 32), r"\(N, 3, H, W\)"),
        (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), r"float tensor.*uint8"),
    ],
)
def test_bad_input_is_a_clear_error(x, match):
    model = zoo.create("resnet20")
    with pytest.raises(ValueError, match=match):
        model(x)


def test_zero_init_last_makes_blocks_identity_at_start():
    model = zoo.create("resnet20", zero_init_last=True)
    assert all((b.conv2.bn.weight == 0).all() for s in model.stages for b in s)
    mnv2 = zoo.create("mobilenetv2_x0_5", zero_init_last=True)
    zeroed = [b for b in mnv2.blocks if b.use_residual]
    assert zeroed and all((b.conv_pwl.bn.weight == 0).all() for b in zeroed)


def test_reference_heads_and_gap_option():
    assert zoo.create("resnet9").head.pool_type == "max"
    assert zoo.create("resnet9", global_pool="avg").head.pool_type == "avg"
    assert zoo.create("airbench94_net").head.scale == pytest.approx(1 / 9)


def test_airbench_whitening_init_whitens_patches():
    model = zoo.create("airbench94_net")
    images = nn.functional.avg_pool2d(torch.randn(64, 3, 18, 18), 3, 1)  # neighbouring pixels correlate
    model.init_whitening(images)
    out = nn.functional.conv2d(images, model.stem.conv.weight[:12])
    flat = out.transpose(0, 1).reshape(12, -1)
    cov = torch.cov(flat)
    assert torch.allclose(cov.diagonal(), torch.ones(12), atol=0.05)


@pytest.mark.parametrize("name", MODELS)
def test_symbolically_traceable_with_the_input_check_kept(name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    traced = torch.fx.symbolic_trace(model)
    assert torch.allclose(traced(x), model(x), atol=1e-5)
    with pytest.raises(ValueError, match=r"expected a float tensor of shape \(N, 3, H, W\)"):
        traced(torch.randn(2, 1, 32, 32))  # the check is one node of the graph, not traced away
    _, nodes = get_graph_node_names(model)
    pooled = next(n for n in nodes if n.startswith("head.global_pool"))
    features = create_feature_extractor(model, return_nodes={pooled: "pooled"})(x)["pooled"]
    assert features.flatten(1).shape == (2, model.num_features)


@pytest.mark.parametrize("name", MODELS)
def test_timm_head_contract(name):
    model = zoo.create(name, global_pool="max", drop_rate=0.1)
    x = torch.randn(2, 3, 32, 32)
    assert model.global_pool == "max" and model.head_hidden_size == model.num_features
    assert model(x).shape == (2, 10)
    model.reset_classifier(0, "")  # timm's way to get the unpooled feature map
    assert model(x).shape == model.forward_features(x).shape
    model.reset_classifier(5, "avg")
    assert model(x).shape == (2, 5) and model.global_pool == "avg"
    with pytest.raises(zoo.errors.ModelKwargsError, match="needs num_classes=0"):
        zoo.create(name, global_pool="")
    with pytest.raises(zoo.errors.ModelKwargsError, match="global_pool"):
        zoo.create(name, global_pool="median")
    has_path = "drop_path_rate" in (_factory.accepted_kwargs(zoo.model_info(name)) or ())
    if has_path:
        paths = [m for m in zoo.create(name, drop_path_rate=0.2).modules() if type(m).__name__ == "DropPath"]
        assert (
            paths and 0.15 < max(p.drop_prob for p in paths) <= 0.2
        )  # linear to 0.2 (the last block may have no residual)
    else:
        with pytest.raises(zoo.errors.ModelKwargsError, match=f"{name} does not take drop_path_rate"):
            zoo.create(name, drop_path_rate=0.1)


@pytest.mark.parametrize("name", MODELS)
def test_feature_extraction_as_timm_has_it(name):
    model = zoo.create(name).eval()
    x = torch.randn(2, 3, 32, 32)
    info = model.feature_info
    final, maps = model.forward_intermediates(x)
    assert torch.equal(final, model.forward_features(x)) and len(maps) == len(info)
    for f, m in zip(info, maps):
        assert m.shape[1] == f["num_chs"] and m.shape[2] == math.ceil(32 / f["reduction"]) - (name == "airbench94_net")
    assert [m.shape for m in model.forward_intermediates(x, indices=[0, -1], intermediates_only=True)] == [
        maps[0].shape,
        maps[-1].shape,
    ]
    features = zoo.create(name, features_only=True, out_indices=(0, len(info) - 1)).eval()
    out = features(x)
    assert [o.shape[1] for o in out] == features.feature_info.channels() == [info[0]["num_chs"], info[-1]["num_chs"]]
    assert model.pretrained_cfg["pool_size"] == tuple(final.shape[2:])


@pytest.mark.parametrize("name", MODELS)
def test_gradient_checkpointing_where_supported(name):
    model = zoo.create(name)
    x = torch.randn(2, 3, 32, 32)
    if model.checkpoint_stages is None:
        with pytest.raises(zoo.errors.ConfigError, match="does not support gradient checkpointing"):
            model.set_grad_checkpointing()
        return
    torch.manual_seed(0)
    model.eval()  # no BN statistics updates, no dropout: the same function with and without checkpointing
    plain = torch.autograd.grad(model(x).sum(), list(model.parameters()), allow_unused=True)
    model.set_grad_checkpointing()
    ckpt = torch.autograd.grad(model(x).sum(), list(model.parameters()), allow_unused=True)
    assert all((a is None and b is None) or torch.allclose(a, b, atol=1e-5) for a, b in zip(plain, ckpt))
