"""zoo._factory: create, load and resolve_model; pretrained_cfg built once; the kwargs a builder takes."""

import inspect
import typing
from unittest import mock

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

import zoo
from zoo import _factory
from zoo.registry import _models
from zoo.weights import WeightsError, file_sha256


class NotebookCNN(nn.Module):
    """The study notebook's own class, with its own state-dict keys."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        return self.classifier(self.gap(self.features(x)).flatten(1))


def test_load_rebuilds_from_header_alone(model, saved):
    rebuilt = zoo.load(saved).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(rebuilt(x), model(x))
    assert rebuilt.zoo_cfg["metrics"] == {"top1": 61.3}


def test_preprocessing_travels_in_the_header(model, tmp_path):
    model.pretrained_cfg.update(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # the notebook's normalisation
    path = tmp_path / "half.safetensors"
    zoo.save_weights(model, path)
    for loaded in (zoo.load(path), zoo.create("modern_gap_cnn", weights=path)):
        assert loaded.pretrained_cfg["mean"] == (0.5, 0.5, 0.5) and loaded.pretrained_cfg["std"] == (0.5, 0.5, 0.5)


def test_builder_kwargs_travel_in_the_header(tmp_path):
    m = zoo.create("resnet20", num_classes=7, norm_layer="groupnorm")
    path = tmp_path / "gn.safetensors"
    zoo.save_weights(m, path)
    rebuilt = zoo.load(path)
    assert rebuilt.num_classes == 7 and not any(isinstance(x, nn.BatchNorm2d) for x in rebuilt.modules())


def test_notebook_weights_load_and_match(tmp_path):
    torch.manual_seed(3)
    nb = NotebookCNN()
    nb(torch.randn(8, 3, 32, 32))  # move BN running stats away from their init
    nb.eval()
    path = tmp_path / "notebook.safetensors"
    save_file({k: v.contiguous() for k, v in nb.state_dict().items()}, path)
    model = zoo.create("modern_gap_cnn", weights=path).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model(x), nb(x), atol=1e-6)


def test_weights_that_cover_the_model_replace_its_random_init(saved, model):
    """The file's tensors become the model's, built on the meta device: no initialisation runs (the global RNG is
    left as it was). A model the file does not cover (here a non-persistent buffer) is built for real."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    loaded = zoo.create("modern_gap_cnn", weights=saved)
    assert torch.equal(torch.rand(3), expected) and loaded.training
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    assert all(p.requires_grad for p in loaded.parameters())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded.eval()(x), model(x))

    @zoo.register_model(family="test")
    def _tmp_buffered(*, num_classes: int = 10, **kwargs):
        net = zoo.models.ModernGAPCNN(num_classes=num_classes, **kwargs)
        net.register_buffer("scale", torch.full((1,), 2.0), persistent=False)
        return net

    try:
        assert zoo.create("_tmp_buffered", weights=saved).scale.item() == 2.0
    finally:
        _models.pop("_tmp_buffered")


def test_num_classes_change_reinitialises_classifier_only(saved, model):
    with pytest.warns(UserWarning, match="classifier"):
        ft = zoo.create("modern_gap_cnn", weights=saved, num_classes=3)
    assert torch.equal(ft.features[0].conv.weight, model.features[0].conv.weight)
    assert ft.head.fc.out_features == 3


def test_in_chans_change_adapts_the_input_conv(saved, model):
    with pytest.warns(UserWarning, match=r"features\.0\.conv\.weight adapted from 3 to 1 input channels"):
        gray = zoo.create("modern_gap_cnn", weights=saved, in_chans=1).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():  # summed weights: on a grey image the same function as the RGB net on its copies
        torch.testing.assert_close(gray(x), model(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)
    with pytest.warns(UserWarning, match="from 3 to 4 input channels"):
        four = zoo.create("modern_gap_cnn", weights=saved, in_chans=4)
    assert four.features[0].conv.weight.shape[1] == 4
    assert torch.equal(four.features[1].conv.weight, model.features[1].conv.weight)


def test_resolve_model_takes_a_file_or_published_weights(saved, model):
    x = torch.randn(1, 3, 32, 32)
    expected = file_sha256(saved)
    loaded = zoo.resolve_model(str(saved))
    assert torch.equal(loaded.eval()(x), model(x)) and loaded.zoo_cfg["sha256"] == expected
    bare = saved.rename(saved.with_suffix(""))  # an existing file is taken as a file whatever its name
    loaded = zoo.resolve_model(str(bare))
    assert torch.equal(loaded.eval()(x), model(x)) and loaded.zoo_cfg["sha256"] == expected
    published = zoo.resolve_model("modern_gap_cnn.cifar10")
    assert published.zoo_cfg["sha256"] == zoo.model_info("modern_gap_cnn").weights["cifar10"].sha256
    with pytest.raises(zoo.UnknownModelError):
        zoo.resolve_model("no_such_model")


def test_load_needs_a_zoo_header(model, tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    with pytest.raises(WeightsError, match="no zoo header"):
        zoo.load(path)


def test_create_the_notebook_model():
    model = zoo.create("modern_gap_cnn")
    assert sum(p.numel() for p in model.parameters()) == 77_130
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    info = zoo.model_info("modern_gap_cnn")
    assert info.params == 77_130
    assert round(info.macs / 1e6, 1) == 20.6
    assert info.family == "simple" and info.paper
    assert info.input_size == (3, 32, 32) and len(info.mean) == 3 and len(info.std) == 3
    assert info.tags == list(info.weights)


def test_create_overrides_and_pretrained_without_weights():
    model = zoo.create("resnet20", num_classes=100, in_chans=1)
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 100)
    assert model.pretrained_cfg["num_classes"] == 100 and model.pretrained_cfg["label_names"] is None
    with pytest.raises(zoo.UnknownModelError, match="no pretrained weights"):
        zoo.create("resnet110", pretrained=True)
    with pytest.raises(zoo.UnknownModelError, match="no weights tagged"):
        zoo.create("resnet110.imagenet")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("resnet20", {"num_classes": -1}, "num_classes must be an integer >= 0, got -1"),
        ("resnet20", {"num_classes": 2.5}, "num_classes must be an integer >= 0"),
        ("resnet20", {"in_chans": 0}, "in_chans must be an integer >= 1, got 0"),
        ("resnet20.", {}, "ends in '.' with no weight tag"),
        ("resnet20", {"drop_path_rate": -0.5}, r"drop_path_rate must be a probability in \[0, 1\), got -0.5"),
        ("resnet20", {"drop_rate": 1.0}, r"drop_rate must be a probability in \[0, 1\), got 1.0"),
        ("resnet20", {"features_only": True, "out_indices": (7,)}, "has 4 feature stages, so give indices in 0..3"),
        ("resnet20", {"features_only": True, "out_indices": 0}, r"or an integer 1..4"),
    ],
)
def test_create_rejects_bad_arguments_by_name(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.create(name, **kwargs)


def test_out_indices_count_from_the_end_as_in_timm():
    x = torch.randn(1, 3, 32, 32)
    last = zoo.create("resnet20", features_only=True, out_indices=(-1,)).eval()
    last_two = zoo.create("resnet20", features_only=True, out_indices=2).eval()
    assert last.feature_info.channels() == [64] and [o.shape[1] for o in last_two(x)] == [32, 64]


def test_accepted_kwargs_follow_the_builder_into_its_class():
    accepted = _factory.accepted_kwargs(zoo.model_info("resnet20"))
    assert {"num_classes", "in_chans", "norm_layer", "drop_path_rate", "zero_init_last", "global_pool"} <= accepted
    with pytest.raises(zoo.errors.ModelKwargsError, match="resnet20 does not take widht"):
        zoo.create("resnet20", widht=3)
    assert zoo.create("resnet20", widths=(8, 16, 32)).num_features == 32  # an architecture default, overridden


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_kwarg_a_builder_advertises_reaches_its_model(name):
    """What `accepted_kwargs` lists (and the unknown-kwarg error offers) reaches the class, even where the builder
    fixes a default of its own (``widths``, ``cfg``, ``width_mult``): no "got multiple values" TypeError."""
    info = zoo.model_info(name)
    cls = typing.get_type_hints(info.builder)["return"]
    for key in sorted(_factory.accepted_kwargs(info)):
        sentinel = object()
        with mock.patch.object(cls, "__init__", autospec=True, return_value=None) as init:
            info.builder(**{key: sentinel})
        bound = inspect.signature(cls.__init__).bind(*init.call_args.args, **init.call_args.kwargs)
        assert bound.arguments[key] is sentinel, key


def test_save_weights_refuses_what_load_could_not_rebuild(tmp_path):
    from zoo.models import ResNet

    by_class = ResNet((1, 1, 1), (8, 16, 32))
    with pytest.raises(WeightsError, match="not built by zoo.create.*weights_only=True"):
        zoo.save_weights(by_class, tmp_path / "c.safetensors")
    zoo.save_weights(by_class, tmp_path / "c.safetensors", weights_only=True)
    with pytest.raises(WeightsError, match="is a weights-only file"):
        zoo.load(tmp_path / "c.safetensors")
    zoo.load_weights(ResNet((1, 1, 1), (8, 16, 32)), tmp_path / "c.safetensors")
    partial = zoo.create("resnet20", act_layer=nn.SiLU)  # a class among the builder kwargs: not JSON
    with pytest.raises(WeightsError, match="model_kwargs' is not JSON"):
        zoo.save_weights(partial, tmp_path / "p.safetensors")
    assert not (tmp_path / "p.safetensors").exists()
