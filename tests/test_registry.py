import pytest
import torch

import zoo
from zoo.registry import _models


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


def test_unknown_name_suggests_close_matches():
    with pytest.raises(zoo.UnknownModelError, match="Did you mean: modern_gap_cnn"):
        zoo.create("modern_gap_cn")
    with pytest.raises(KeyError):
        zoo.model_info("resnet21")


def test_list_models_patterns_and_filters():
    assert "modern_gap_cnn" in zoo.list_models()
    resnets = zoo.list_models("resnet*")
    assert resnets[:5] == ["resnet9", "resnet18", "resnet20", "resnet32", "resnet44"]  # natural sort
    assert set(zoo.list_models(["vgg11*", "wrn*"])) == {"vgg11_bn", "wrn16_4", "wrn28_10"}
    small = zoo.list_models(max_params=300_000)
    assert "resnet20" in small and "resnet56" not in small
    assert all(zoo.model_info(n).macs <= 50e6 for n in zoo.list_models(max_macs=50_000_000))
    assert zoo.list_models(family="vgg") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]


def test_is_model():
    assert zoo.is_model("resnet20") and not zoo.is_model("resnet21")
    assert not zoo.is_model("resnet20.nonexistent_tag")


def test_duplicate_names_raise():
    with pytest.raises(ValueError, match="already registered"):

        @zoo.register_model
        def modern_gap_cnn(**kwargs):  # pragma: no cover - never built
            raise AssertionError


def test_names_must_be_snake_case():
    with pytest.raises(ValueError, match="lower_snake_case"):
        zoo.register_model(name="Bad-Name")(lambda **kw: None)


def test_register_bare_and_with_metadata():
    @zoo.register_model(family="test", paper="none")
    def _tmp_registry_model(*, num_classes: int = 10, in_chans: int = 3, **kwargs):
        return zoo.models.ModernGAPCNN(num_classes=num_classes, in_chans=in_chans, widths=(8, 16), **kwargs)

    try:
        info = zoo.model_info("_tmp_registry_model")
        assert info.family == "test" and info.params == sum(p.numel() for p in _tmp_registry_model().parameters())
        model = zoo.create("_tmp_registry_model", num_classes=3, in_chans=1)
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    finally:
        _models.pop("_tmp_registry_model")


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
    ],
)
def test_create_rejects_bad_arguments_by_name(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.create(name, **kwargs)


def test_all_is_static_and_complete():
    for name in zoo.__all__:
        assert hasattr(zoo, name), name
    assert isinstance(zoo.__version__, str)
