import pytest
import torch

import zoo
from zoo.registry import _models


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
    assert zoo.list_models(max_params=3e5) == small  # budgets may be floats (1e6)
    with pytest.raises(TypeError, match="max_params must be a number"):
        zoo.list_models(max_params="1e6")
    with pytest.raises(TypeError, match="pattern must be a string or strings"):
        zoo.list_models(["resnet*", 20])


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


def test_all_is_static_and_complete():
    for name in zoo.__all__:
        assert hasattr(zoo, name), name
    assert isinstance(zoo.__version__, str)
