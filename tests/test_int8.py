"""int8: ONNX Runtime static quantization and torchao's PT2E, end to end on tiny fake data."""

import json

import numpy as np
import pytest
import torch

import zoo
from zoo.data import load_cifar, normalize
from zoo.eval import evaluate_model
from zoo.eval import main as eval_main
from zoo.export import main as export_main
from zoo.int8 import OnnxModel, calibration_batches, quantize, quantize_pt2e
from zoo.predict import main as predict_main


@pytest.fixture(scope="module")
def shipped():
    return zoo.create("resnet20.cifar10").eval()


@pytest.fixture(scope="module")
def int8(shipped, fake500, tmp_path_factory):
    train = load_cifar("cifar10", "train", fake500, download=False)
    batches = calibration_batches(shipped, train, images=64, batch_size=16)
    return quantize(shipped, batches, tmp_path_factory.mktemp("int8") / "r20.onnx"), batches


def test_calibration_takes_the_first_training_images_normalised(shipped, fake500):
    train = load_cifar("cifar10", "train", fake500, download=False)
    batches = calibration_batches(shipped, train, images=40, batch_size=16)
    assert [len(b) for b in batches] == [16, 16, 8]
    cfg = shipped.pretrained_cfg
    expected = normalize(train.images[:40], torch.tensor(cfg["mean"]), torch.tensor(cfg["std"]), channels_last=False)
    assert np.array_equal(np.concatenate(batches), expected.numpy())
    with pytest.raises(zoo.errors.ConfigError, match="calibration needs between 1 and 80 images"):
        calibration_batches(shipped, train, images=81)


def test_int8_onnx_is_within_tolerance_of_the_float_model(shipped, int8, fake500):
    model, _ = int8
    assert isinstance(model, OnnxModel) and model.num_classes == 10
    assert model.pretrained_cfg["mean"] == shipped.pretrained_cfg["mean"]
    assert "static int8 (ONNX Runtime QDQ, per-channel" in model.zoo_cfg["quantization"]
    test = load_cifar("cifar10", "test", fake500, download=False)
    cfg = shipped.pretrained_cfg
    x = normalize(test.images, torch.tensor(cfg["mean"]), torch.tensor(cfg["std"]), channels_last=False)
    with torch.no_grad():
        ref, got = shipped(x), model(x)
    assert (ref.argmax(1) == got.argmax(1)).float().mean() > 0.9
    assert (ref - got).abs().max() < 0.25 * ref.abs().max()
    float_top1, int8_top1 = evaluate_model(shipped, test)["top1"], evaluate_model(model, test)["top1"]
    assert abs(float_top1 - int8_top1) <= 2.0


def test_the_onnx_file_and_the_pytorch_int8_path_agree(shipped, int8, fake500):
    model, batches = int8
    pt2e = quantize_pt2e(shipped, batches)
    x = torch.from_numpy(np.concatenate(batches))
    with torch.no_grad():
        a, b = model(x), pt2e(x)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.9
    assert (a - b).abs().max() < 0.25 * a.abs().max()


def test_eval_predict_and_export_take_int8_files(int8, fake500, tmp_path, capsys):
    model, _ = int8
    assert eval_main([str(model.path), "--data-dir", str(fake500), "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 500 and result["labels"][0] == "airplane"
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    assert predict_main([str(model.path), str(tmp_path / "red.png"), "--top-k", "2"]) == 0
    assert "red.png: " in capsys.readouterr().out
    out = tmp_path / "cli.onnx"
    argv = ["modern_gap_cnn.cifar10", "--int8", "--data-dir", str(fake500), "--calibration-images", "32", "--output"]
    assert export_main([*argv, str(out)]) == 0
    assert isinstance(zoo.resolve_model(str(out)), OnnxModel)
    assert export_main([*argv[:-1], "--format", "export", "--output", str(tmp_path / "x.pt2")]) == 2


def int8_weights(path) -> list[np.ndarray]:
    """The int8 initializers of a QDQ file: its quantized weights."""
    import onnx
    from onnx import numpy_helper

    tensors = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    return [t for t in tensors if t.dtype == np.int8 and t.ndim == 4]


def test_reduce_range_stores_7_bit_weights(int8, fake500, tmp_path):
    model, _ = int8
    eight = int8_weights(model.path)
    assert max(int(np.abs(w).max()) for w in eight) == 127  # 8 bits: per channel up to 127
    out = tmp_path / "r7.onnx"
    argv = ["resnet20.cifar10", "--int8", "--reduce-range", "--data-dir", str(fake500), "--calibration-images", "32"]
    assert export_main([*argv, "--output", str(out)]) == 0
    weights = int8_weights(out)
    assert len(weights) == len(eight) and max(int(np.abs(w).max()) for w in weights) <= 64
    assert "s8 weights in 7 bits" in OnnxModel(out).zoo_cfg["quantization"]


def test_an_onnx_file_with_free_text_metadata_loads(int8, tmp_path):
    import onnx

    model, _ = int8
    proto = onnx.load(str(model.path))
    proto.metadata_props.add(key="producer_notes", value="exported elsewhere, not JSON")
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    foreign = OnnxModel(tmp_path / "foreign.onnx")
    assert foreign.pretrained_cfg["mean"] == model.pretrained_cfg["mean"] and foreign.num_classes == 10
