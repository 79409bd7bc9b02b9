import functools
import http.server
import json
import pickle
import struct
import threading
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import StorageError
from zoo.weights import WeightsError, file_sha256, read_weights


def _snapshot(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def _unchanged(m, snap):
    return all(torch.equal(v, snap[k]) for k, v in m.state_dict().items())


def test_header_is_self_describing(saved):
    _, meta = read_weights(saved)
    assert meta["format"] == "zoo" and meta["architecture"] == "modern_gap_cnn"
    assert meta["num_classes"] == 10 and meta["label_names"][0] == "airplane"
    assert meta["zoo_version"] == zoo.__version__ and meta["metrics"] == {"top1": 61.3}
    assert meta["recipe"] == "unit-test" and len(meta["mean"]) == 3


def test_sha256_checked_on_every_load(model, saved):
    digest = file_sha256(saved)
    zoo.load_weights(model, saved, sha256=digest)
    snap = _snapshot(model)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.load_weights(model, saved, sha256="0" * 64)
    assert _unchanged(model, snap)


def test_fp16_storage_loads_into_fp32(model, tmp_path):
    path = tmp_path / "half.safetensors"
    zoo.save_weights(model, path, dtype=torch.float16)
    other = zoo.create("modern_gap_cnn", weights=path)
    assert other.features[0].conv.weight.dtype == torch.float32
    assert torch.allclose(other.features[0].conv.weight, model.features[0].conv.weight, atol=1e-3)


def test_prefixes_are_stripped(model, tmp_path):
    sd = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "ddp.safetensors"
    save_file(sd, path)
    other = zoo.create("modern_gap_cnn", weights=path).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(other(x), model(x))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_url_download_into_the_cache(saved, model, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=saved.parent))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{saved.name}"
        other = zoo.create("modern_gap_cnn", weights=url).eval()
        x = torch.randn(1, 3, 32, 32)
        assert torch.equal(other(x), model(x))
        assert [p.name for p in (tmp_path / "hub" / "zoo" / "weights").glob("*/*")] == [saved.name]
        with pytest.raises(WeightsError, match="could not download"):
            zoo.create("modern_gap_cnn", weights=f"http://127.0.0.1:{server.server_port}/missing.safetensors")
        by_url = zoo.resolve_model(url)  # what --teacher URL and zoo.eval URL resolve through
        assert torch.equal(by_url.eval()(x), model(x)) and by_url.pretrained_cfg["url"] == url
    finally:
        server.shutdown()


# ----------------------------------------------------------------------------------------- bad input
def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_bad_files_are_clear_errors_and_leave_the_model_unchanged(model, saved, tmp_path):
    snap = _snapshot(model)
    good = saved.read_bytes()
    cases = {
        "empty": (_write(tmp_path / "empty.safetensors", b""), "empty"),
        "truncated": (_write(tmp_path / "trunc.safetensors", good[: len(good) // 2]), "truncated|not a valid"),
        "text": (
            _write(tmp_path / "text.safetensors", b"hello, this is not a weight file at all"),
            "not a safetensors",
        ),
        "pickle": (_write(tmp_path / "p.pt", pickle.dumps({"a": 1}, protocol=4)), "pickle"),
        "missing": (tmp_path / "nope.safetensors", "not found"),
        "folder": (tmp_path, "is a folder; expected a weights file"),
    }
    zip_path = tmp_path / "torch_save.pt"
    torch.save(model.state_dict(), zip_path)
    cases["torch.save"] = (zip_path, "pickle")
    bad_header = struct.pack("<Q", 10**9) + b"{"
    cases["huge header"] = (_write(tmp_path / "h.safetensors", bad_header), "not a safetensors")
    for name, (path, match) in cases.items():
        with pytest.raises(WeightsError, match=match):
            zoo.load_weights(model, path)
        assert _unchanged(model, snap), name


def test_other_architecture_lists_key_problems(model, tmp_path):
    path = tmp_path / "r20.safetensors"
    zoo.save_weights(zoo.create("resnet20"), path)
    snap = _snapshot(model)
    with pytest.raises(WeightsError, match="another architecture.*missing keys: .*unexpected keys: "):
        zoo.load_weights(model, path)
    assert _unchanged(model, snap)


def test_mis_shaped_key(model, tmp_path):
    sd = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    sd["features.1.conv.weight"] = torch.zeros(128, 64, 5, 5)
    path = tmp_path / "shape.safetensors"
    save_file(sd, path)
    snap = _snapshot(model)
    with pytest.raises(WeightsError, match=r"mis-shaped keys: features.1.conv.weight: file \(128, 64, 5, 5\)"):
        zoo.load_weights(model, path)
    assert _unchanged(model, snap)


def test_wrong_dtype(model, tmp_path):
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["features.0.conv.weight"] = sd["features.0.conv.weight"].to(torch.int32)
    path = tmp_path / "dtype.safetensors"
    save_file(sd, path)
    with pytest.raises(WeightsError, match="wrong dtype: features.0.conv.weight: file torch.int32"):
        zoo.load_weights(model, path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights(model, tmp_path, value):
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["head.fc.weight"][0, 0] = value
    path = tmp_path / "nan.safetensors"
    save_file(sd, path)
    snap = _snapshot(model)
    with pytest.raises(WeightsError, match="NaN or Inf.*head.fc.weight"):
        zoo.load_weights(model, path)
    assert _unchanged(model, snap)


def test_save_is_atomic_and_leaves_no_temp_files(model, tmp_path):
    path = tmp_path / "a.safetensors"
    zoo.save_weights(model, path)
    zoo.save_weights(model, path)
    with pytest.raises(StorageError, match="is a folder; expected a file path"):
        zoo.save_weights(model, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    assert json.loads(json.dumps(read_weights(path)[1]))  # header decodes to plain JSON
