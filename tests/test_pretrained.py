"""Shipped weights and their cards, `python -m zoo.eval` and torch.hub."""

import json
from pathlib import Path

import pytest
import torch
from script_loader import load_script

import zoo
from zoo.eval import main as eval_main
from zoo.weights import file_sha256, read_weights

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [(n.split(".")[0], n.split(".")[1]) for n in zoo.list_models(pretrained=True)]


@pytest.mark.parametrize(("name", "tag"), SHIPPED)
def test_shipped_weights_load_and_agree_with_manifest_and_card(name, tag):
    spec = zoo.model_info(name).weights[tag]
    path = Path(spec.location)
    assert file_sha256(path) == spec.sha256
    model = zoo.create(f"{name}.{tag}")  # the pinned hash is checked on this load
    assert model.pretrained_cfg["tag"] == tag and model.zoo_cfg["metrics"]["top1"] == spec.metrics["top1"]
    _, header = read_weights(path)
    assert header["metrics"] == spec.metrics and header["architecture"] == name
    assert sum(p.numel() for p in model.parameters()) == zoo.model_info(name).params
    card = (ROOT / spec.card).read_text()
    assert spec.sha256 in card and f"{spec.metrics['top1']:.2f}%" in card and f"{zoo.model_info(name).params:,}" in card
    assert (ROOT / spec.card.replace(".md", ".metrics.csv")).is_file()
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def test_eval_cli_on_500_fake_images(tiny_run, fake500, tmp_path, capsys):
    weights = tiny_run / "last.safetensors"
    plot = tmp_path / "confusion.png"
    assert eval_main([str(weights), "--data-dir", str(fake500), "--tta", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "(500 images, flip TTA)" in out and "per-class accuracy" in out and "confusion matrix" in out
    assert "\n  no TTA: top-1 " in out  # the lower level comes from the same forward passes
    assert plot.stat().st_size > 0
    assert eval_main(["modern_gap_cnn", "--weights", str(weights), "--data-dir", str(fake500), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 500 and sum(map(sum, result["confusion"])) == 500 and 0 <= result["top1"] <= 100
    assert eval_main([str(weights), "--data-dir", str(fake500), "--tta", "2", "--json"]) == 0
    tta2 = json.loads(capsys.readouterr().out)
    assert tta2["tta"] == 2 and tta2["n"] == 500 and tta2["loss"] != result["loss"]
    # every lower level, measured inside the level-2 passes, equals a run at that level on its own
    assert eval_main([str(weights), "--data-dir", str(fake500), "--tta", "1", "--json"]) == 0
    tta1 = json.loads(capsys.readouterr().out)
    for level, alone in enumerate((result, tta1, tta2)):
        assert tta2["by_tta"][level] == {"tta": level, **{k: alone[k] for k in ("loss", "top1", "top5")}}


def test_eval_errors(tmp_path, capsys):
    assert eval_main(["resnet110"]) == 2  # an architecture alone: evaluating random weights means nothing
    assert "without weights: give NAME.TAG, --pretrained or --weights FILE" in capsys.readouterr().err
    assert eval_main(["resnet110", "--pretrained"]) == 2
    assert "no pretrained weights" in capsys.readouterr().err


def test_torch_hub_local(monkeypatch):
    model = torch.hub.load(str(ROOT), "resnet20", source="local", num_classes=5, trust_repo=True)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    hubconf = load_script(ROOT / "hubconf.py")
    assert all(callable(getattr(hubconf, name, None)) for name in zoo.list_models())
    for name, _ in SHIPPED[:1]:
        hub = torch.hub.load(str(ROOT), name, source="local", pretrained=True, trust_repo=True)
        assert hub.pretrained_cfg["tag"] == zoo.model_info(name).default_tag


@pytest.mark.parametrize(("name", "tag"), SHIPPED)
def test_timms_own_data_pipeline_gives_zoos_numbers(name, tag, fake500):
    """resolve_data_config + create_transform on a zoo model: no resize, no crop, the model's mean/std."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from zoo.data import load_cifar
    from zoo.eval import evaluate_model

    model = zoo.create(f"{name}.{tag}").eval()
    split = load_cifar("cifar10", "test", fake500, download=False).subset(slice(100))
    transform = create_transform(**resolve_data_config(model=model))
    batch = torch.stack([transform(Image.fromarray(img.permute(1, 2, 0).numpy())) for img in split.images])
    with torch.no_grad():
        logits = model(batch)
    ours = evaluate_model(model, split)  # the mean loss follows every logit, not only each argmax
    assert ours["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, split.labels)), rel=1e-5)
    assert int((logits.argmax(1) == split.labels).sum()) == round(ours["top1"])  # 100 images: a percent each


def test_eval_shows_progress_unless_asked_not_to(tiny_run, fake500, capsys):
    weights = str(tiny_run / "last.safetensors")
    assert eval_main([weights, "--data-dir", str(fake500), "--batch-size", "100"]) == 0
    assert "evaluate: " in capsys.readouterr().err  # tqdm's bar, 5 batches
    assert eval_main([weights, "--data-dir", str(fake500), "--no-progress"]) == 0
    assert "evaluate" not in capsys.readouterr().err
