"""zoo and timm, both ways; the Hugging Face Hub through the real huggingface_hub client against a local fake."""

import json

import huggingface_hub.constants
import pytest
import timm
import torch
from fake_hub import FakeHub

import zoo
from zoo.errors import WeightsError
from zoo.timm_bridge import register_timm_models


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)  # what zoo reads at call time
        # what timm's own hub loader reads (huggingface_hub froze HF_ENDPOINT when it was imported)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake.url)
        template = fake.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield fake


def test_zoo_models_in_timms_registry():
    names = register_timm_models()
    assert "zoo_resnet20" in names and "zoo_vgg11_bn" in names and register_timm_models() == names  # idempotent
    assert "zoo_resnet20.cifar10" in timm.list_models("zoo_*", pretrained=True)
    x = torch.randn(2, 3, 32, 32)
    ours = zoo.create("resnet20.cifar10").eval()
    theirs = timm.create_model("zoo_resnet20.cifar10", pretrained=True).eval()
    assert torch.equal(theirs(x), ours(x))
    assert theirs.pretrained_cfg["crop_pct"] == 1.0 and theirs.pretrained_cfg["architecture"] == "zoo_resnet20"
    features = timm.create_model("zoo_resnet20", features_only=True, out_indices=(1, 3))
    assert features.feature_info.channels() == [16, 64] and [f.shape[1] for f in features(x)] == [16, 64]
    assert timm.create_model("zoo_resnet20.cifar10", pretrained=True, num_classes=4)(x).shape == (2, 4)


def test_timms_hub_export_reloads_in_timm_and_in_zoo(tmp_path):
    register_timm_models()
    model = timm.create_model("zoo_mobilenetv2_x0_5.cifar10", pretrained=True).eval()
    timm.models.save_for_hf(model, str(tmp_path), safe_serialization=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]  # no pickle
    x = torch.randn(2, 3, 32, 32)
    overlay = {"file": str(tmp_path / "model.safetensors")}
    again = timm.create_model("zoo_mobilenetv2_x0_5", pretrained=True, pretrained_cfg_overlay=overlay).eval()
    assert torch.equal(again(x), model(x))
    assert torch.equal(zoo.load(tmp_path).eval()(x), model(x))  # zoo reads timm's layout
    assert torch.equal(zoo.create(tmp_path).eval()(x), model(x))  # the folder as a Path, as zoo.load takes it
    with pytest.raises(TypeError, match="model_name must be a model name, hf-hub:ORG/REPO or a folder, got None"):
        zoo.create(None)


def test_push_to_hub_and_back_through_zoo_and_timm(hub):
    model = zoo.create("resnet20.cifar10").eval()
    url = zoo.push_to_hub(model, "me/zoo-resnet20", card="# my resnet20\n")
    assert url.startswith(hub.url) and set(hub.repos["me/zoo-resnet20"]) == {
        "model.safetensors",
        "config.json",
        "README.md",
    }
    config = json.loads(hub.repos["me/zoo-resnet20"]["config.json"])
    assert config["architecture"] == "zoo_resnet20" and config["pretrained_cfg"]["crop_pct"] == 1.0
    assert config["zoo"]["sha256"] and "library_name: timm" in hub.repos["me/zoo-resnet20"]["README.md"].decode()
    x = torch.randn(2, 3, 32, 32)
    for loaded in (
        zoo.create("hf-hub:me/zoo-resnet20"),
        zoo.load("hf-hub:me/zoo-resnet20"),
        zoo.resolve_model("hf-hub:me/zoo-resnet20"),
    ):
        assert torch.equal(loaded.eval()(x), model(x)) and loaded.pretrained_cfg["architecture"] == "resnet20"
    register_timm_models()
    via_timm = timm.create_model("hf-hub:me/zoo-resnet20", pretrained=True).eval()
    assert torch.equal(via_timm(x), model(x))
    assert any(r.startswith("POST /api/models/me/zoo-resnet20/commit/") for r in hub.requests)


def test_hub_downloads_are_checked_against_the_recorded_sha256(hub):
    zoo.push_to_hub(zoo.create("modern_gap_cnn"), "me/gap")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.load("hf-hub:me/gap", sha256="0" * 64)
    config = json.loads(hub.repos["me/gap"]["config.json"])
    config["zoo"]["sha256"] = "f" * 64  # a repo whose weights are not what its config says
    zoo.push_to_hub(zoo.create("modern_gap_cnn"), "me/gap2")
    hub.repos["me/gap2"]["config.json"] = json.dumps(config).encode()
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.create("hf-hub:me/gap2")
    with pytest.raises(WeightsError, match="could not download hf-hub:me/missing"):
        zoo.create("hf-hub:me/missing")
