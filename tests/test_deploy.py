"""Export (ONNX, torch.export, safetensors) and `python -m zoo.predict` on real image files."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from PIL import Image

import zoo
from zoo.deploy import export_onnx, export_program
from zoo.export import main as export_main
from zoo.predict import main as predict_main


def _trained_like(name):
    """A model with non-trivial BN statistics, so folding and exports are tested on real numbers."""
    torch.manual_seed(0)
    model = zoo.create(name).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, 3, 32, 32))
    return model.eval()


@pytest.mark.parametrize("fuse", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize(
    "name",
    [
        "modern_gap_cnn",
        pytest.param("resnet20", marks=pytest.mark.slow),
        pytest.param("mobilenetv2_x0_5", marks=pytest.mark.slow),
    ],
)
def test_onnx_matches_pytorch_with_dynamic_batch(name, fuse, tmp_path):
    model = _trained_like(name)
    if fuse:
        zoo.fuse_bn(model)
    path = export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 8):
        x = torch.randn(n, 3, 32, 32)
        ref = model(x).detach().numpy()
        (out,) = session.run(["logits"], {"input": x.numpy()})
        assert out.shape == (n, 10)
        assert np.abs(out - ref).max() < 1e-4
        assert (out.argmax(1) == ref.argmax(1)).all()
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    cfg = model.pretrained_cfg
    assert meta["mean"] == list(cfg["mean"]) and meta["std"] == list(cfg["std"]) and meta["input_size"] == [3, 32, 32]
    assert meta["label_names"] == list(cfg["label_names"]) and meta["architecture"] == name


def test_onnx_without_its_extra_says_which_to_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else real(n, *a))
    with pytest.raises(zoo.errors.ConfigError, match=r"ONNX needs onnxscript: pip install 'zoo\[onnx\]'"):
        export_onnx(zoo.create("resnet20"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_torch_export_program_round_trip(tmp_path):
    model = _trained_like("resnet20")
    path = tmp_path / "m.pt2"
    export_program(model, path)
    loaded = torch.export.load(str(path)).module()
    for n in (1, 5):
        x = torch.randn(n, 3, 32, 32)
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_export_cli_writes_each_format(tmp_path):
    weights = tmp_path / "w.safetensors"
    zoo.save_weights(_trained_like("modern_gap_cnn"), weights)
    for fmt, suffix in (("onnx", ".onnx"), ("export", ".pt2"), ("safetensors", ".safetensors")):
        out = tmp_path / f"out{suffix}"
        assert (
            export_main(["modern_gap_cnn", "--weights", str(weights), "--format", fmt, "--fuse", "--output", str(out)])
            == 0
        )
        assert out.stat().st_size > 0
    fused = zoo.load(tmp_path / "out.safetensors")
    assert fused.zoo_cfg["fused"] and not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert export_main(["nope_net", "--format", "onnx"]) == 2


@pytest.mark.parametrize(("target", "write", "arg"), [("onnx", export_onnx, 2), ("export", export_program, 1)])
def test_a_failed_export_leaves_the_old_file_and_no_temporaries(target, write, arg, tmp_path, monkeypatch):
    path = tmp_path / "m.out"
    path.write_bytes(b"the last good export")

    def half_then_fail(*args, **kwargs):
        with open(args[arg], "wb") as f:
            f.write(b"half a file")
        raise RuntimeError("the exporter failed")

    monkeypatch.setattr(getattr(torch, target), "export" if target == "onnx" else "save", half_then_fail)
    with pytest.raises(RuntimeError, match="the exporter failed"):
        write(zoo.create("modern_gap_cnn"), path)
    assert path.read_bytes() == b"the last good export" and [p.name for p in tmp_path.iterdir()] == ["m.out"]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    png = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(png)
    jpg = tmp_path / "b.jpg"
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(jpg)
    gray = tmp_path / "c.png"
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8), mode="L").save(gray)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    return {"png": png, "jpg": jpg, "gray": gray, "broken": broken, "missing": tmp_path / "missing.png"}


def test_predict_json_and_errors_do_not_stop_other_images(images, tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    zoo.save_weights(_trained_like("modern_gap_cnn"), weights)
    paths = [str(images[k]) for k in ("png", "missing", "jpg", "broken", "gray")]
    rc = predict_main(["modern_gap_cnn", "--weights", str(weights), *paths, "--json", "--top-k", "3"])
    captured = capsys.readouterr()
    assert rc == 2
    results = json.loads(captured.out)
    assert [("error" in r) for r in results] == [False, True, False, True, False]
    assert "no such file" in results[1]["error"] and "not a readable image" in results[3]["error"]
    for r in (results[0], results[2], results[4]):
        probs = [t["probability"] for t in r["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        assert r["top_k"][0]["label"] in zoo.create("modern_gap_cnn").pretrained_cfg["label_names"]
    assert "missing.png" in captured.err


def test_predict_text_output_from_a_weight_file(images, tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    zoo.save_weights(_trained_like("resnet20"), weights)
    assert predict_main([str(weights), str(images["png"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(images["png"])) and "%" in out


def test_predict_text_output_names_an_unreadable_image_once_on_stderr(images, tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    zoo.save_weights(_trained_like("resnet20"), weights)
    assert predict_main([str(weights), str(images["missing"]), str(images["png"])]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(str(images["png"])) and "missing.png" not in captured.out
    assert captured.err.count("missing.png") == 1 and captured.err.startswith("zoo.predict: error: ")


def test_predict_matches_manual_preprocessing(images):
    model = _trained_like("modern_gap_cnn")
    result = zoo.deploy.predict_images(model, [images["png"]], top_k=1)[0]
    im = Image.open(images["png"]).convert("RGB").resize((32, 32), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
    mean, std = (torch.tensor(model.pretrained_cfg[k]).view(3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        probs = model(((x - mean) / std)[None]).softmax(1)[0]
    assert result["top_k"][0]["index"] == int(probs.argmax())
    assert result["top_k"][0]["probability"] == pytest.approx(float(probs.max()), abs=1e-6)
