"""Hostile and careless input: every case ends in one line saying what was expected (exit code 2 from a CLI),
allocates nothing a header asks for, fetches nothing a file names, and leaves saved state as it was."""

import csv
import errno
import http.server
import importlib.metadata
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import write_cifar10
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo import _factory, registry, weights
from zoo.data import load_cifar, load_folder
from zoo.engine.run import RunDir
from zoo.errors import DataError, RunDirError, StorageError, WeightsError
from zoo.eval import main as eval_main
from zoo.export import main as export_main
from zoo.list import main as list_main
from zoo.predict import main as predict_main
from zoo.train import main as train_main


def one_line_error(capsys, rc, *, expect: str, code: int = 2) -> str:
    """The CLI exited with ``code`` and printed one line (or argparse's usage + one line) and no traceback."""
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err and expect in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return err


def _file_with_header(path: Path, tensors: dict, header: dict) -> Path:
    save_file(tensors, path, metadata={k: json.dumps(v) for k, v in header.items()})
    return path


@pytest.fixture
def gap_file(tmp_path):
    model = zoo.create("modern_gap_cnn")
    path = tmp_path / "w.safetensors"
    zoo.save_weights(model, path)
    return path, {k: v.contiguous() for k, v in model.state_dict().items()}


def _header(**changes):
    base = {
        "format": "zoo",
        "architecture": "modern_gap_cnn",
        "model_kwargs": {"num_classes": 10},
        "num_classes": 10,
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "fused": False,
        "metrics": {},
    }
    return {**base, **changes}


class _Server:
    """A local HTTP server for the cases that fetch: ``routes`` maps a path to (status, body)."""

    def __init__(self, routes):
        self.routes, self.requests = routes, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                status, body = server.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


# ----------------------------------------------------------------------------- 1. a file makes zoo allocate or fetch
@pytest.mark.parametrize(
    "changes",
    [{"model_kwargs": {"widths": [20000, 20000]}}, {"num_classes": 2_000_000_000, "model_kwargs": {}}],
    ids=["huge-widths", "huge-num-classes"],
)
def test_a_header_cannot_make_zoo_allocate_what_its_tensors_do_not_hold(gap_file, tmp_path, monkeypatch, changes):
    _, tensors = gap_file
    path = _file_with_header(tmp_path / "bomb.safetensors", tensors, _header(**changes))
    builds = []
    real_build = _factory._build
    monkeypatch.setattr(
        _factory, "_build", lambda info, kw, device=None: builds.append(device) or real_build(info, kw, device)
    )
    with pytest.raises(WeightsError, match="does not fit modern_gap_cnn.*mis-shaped keys"):
        zoo.load(path)
    assert builds == ["meta"]  # checked against the model built on the meta device; never built for real


def test_a_header_never_makes_zoo_fetch_a_url(gap_file, tmp_path):
    _, tensors = gap_file
    server = _Server({})
    try:
        evil = _header(model_kwargs={"weights": f"{server.url}/other.safetensors"})
        with pytest.raises(WeightsError, match="may not name weights"):
            zoo.load(_file_with_header(tmp_path / "url.safetensors", tensors, evil))
        odd = _header(model_kwargs={"evil": 1})
        with pytest.raises(WeightsError, match="does not take evil"):
            zoo.load(_file_with_header(tmp_path / "kw.safetensors", tensors, odd))
        assert server.requests == []
    finally:
        server.close()


# ----------------------------------------------------------------------------- 2. downloads
def test_a_server_that_never_answers_times_out(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 1.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never sends a byte
    try:
        start = time.perf_counter()
        with pytest.raises(WeightsError, match="could not download .*timed out"):
            zoo.create("modern_gap_cnn", weights=f"http://127.0.0.1:{silent.getsockname()[1]}/w.safetensors")
        assert time.perf_counter() - start < 10
    finally:
        silent.close()


def test_the_cache_is_keyed_by_url_and_never_keeps_a_failed_download(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    a, b = zoo.create("modern_gap_cnn").eval(), zoo.create("modern_gap_cnn", widths=(64, 128), drop_rate=0.1).eval()
    torch.nn.init.normal_(b.head.fc.weight)
    files = {}
    for name, model in (("a", a), ("b", b)):
        zoo.save_weights(model, tmp_path / f"{name}.safetensors")
        files[name] = (tmp_path / f"{name}.safetensors").read_bytes()
    server = _Server(
        {
            "/a/w.safetensors": (200, files["a"]),
            "/b/w.safetensors": (200, files["b"]),
            "/c/w.safetensors": (200, b"<html>502 Bad Gateway</html>"),
        }
    )
    try:
        x = torch.randn(2, 3, 32, 32)
        got_a = zoo.load(f"{server.url}/a/w.safetensors").eval()
        got_b = zoo.load(f"{server.url}/b/w.safetensors").eval()
        assert torch.equal(got_a(x), a(x)) and torch.equal(got_b(x), b(x))  # same file name, other URL, other file
        with pytest.raises(WeightsError, match="not a safetensors file"):
            zoo.load(f"{server.url}/c/w.safetensors")
        server.routes["/c/w.safetensors"] = (200, files["a"])  # the server recovers
        assert torch.equal(zoo.load(f"{server.url}/c/w.safetensors").eval()(x), a(x))
        assert not list((tmp_path / "cache").rglob("*.part"))
    finally:
        server.close()


# ----------------------------------------------------------------------------- 3. runs overwrite runs
def test_a_run_folder_is_never_reused_without_resume_or_overwrite(cifar10_dir, tmp_path, capsys):
    tiny = [
        "--data-dir",
        str(cifar10_dir),
        "--out",
        str(tmp_path),
        "--name",
        "x",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--no-progress",
        "--no-plot",
    ]
    assert train_main(["modern_gap_cnn", *tiny]) == 0
    first = (tmp_path / "x" / "last.safetensors").read_bytes()
    capsys.readouterr()
    rc = train_main(["resnet20", *tiny])
    one_line_error(capsys, rc, expect="run folder")
    assert (tmp_path / "x" / "last.safetensors").read_bytes() == first
    assert json.loads((tmp_path / "x" / "run.json").read_text())["config"]["model"] == "modern_gap_cnn"
    assert train_main(["resnet20", *tiny, "--overwrite"]) == 0
    assert json.loads((tmp_path / "x" / "run.json").read_text())["config"]["model"] == "resnet20"


def test_a_run_folder_is_locked_while_a_process_trains_in_it(tmp_path):
    first = RunDir.create(tmp_path / "r")
    with pytest.raises(RunDirError, match="in use by another process"):
        RunDir.create(tmp_path / "r", overwrite=True)
    first.release()
    RunDir.create(tmp_path / "r", overwrite=True).release()


# ----------------------------------------------------------------------------- 4. a full disk
def test_a_full_disk_is_one_message_and_leaves_no_temporaries(tmp_path, monkeypatch):
    model = zoo.create("modern_gap_cnn")
    path = tmp_path / "w.safetensors"
    zoo.save_weights(model, path)
    before = path.read_bytes()

    def fail(code=errno.ENOSPC):
        raise OSError(code, os.strerror(code))

    def full(*args, **kwargs):
        fail()

    monkeypatch.setattr(weights, "save_file", full)
    with pytest.raises(StorageError, match=rf"no space left to write {path}: about [\d,]+ bytes needed"):
        zoo.save_weights(model, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    from matplotlib.figure import Figure

    from zoo.eval import _plot_confusion

    monkeypatch.setattr(Figure, "savefig", full)
    with pytest.raises(StorageError, match=r"no space left to write .*c\.png: [\d,]+ free"):
        _plot_confusion(torch.eye(2, dtype=torch.int64), ["a", "b"], tmp_path / "c.png", "t")
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    monkeypatch.setattr(csv.DictWriter, "writerows", full)  # a run's metrics, rewritten every epoch
    with pytest.raises(StorageError, match=r"no space left to write .*metrics\.csv: [\d,]+ free"):
        RunDir(tmp_path).write_metrics([dict(epoch=1, eval_acc=1.0)], plot=False, title="t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl", "w.safetensors"]
    with (
        monkeypatch.context() as m,
        pytest.raises(StorageError, match=r"cannot write .*run\.json: Input/output error \([\d,]+"),
    ):
        m.setattr(Path, "write_text", lambda *a, **k: fail(errno.EIO))
        RunDir(tmp_path).write_meta(epoch=1)  # another write error: one line too, run.json left as it was
    assert not (tmp_path / "run.json").exists()
    stale = tmp_path / "run" / ".checkpoint.safetensors.abc.tmp"  # what a SIGKILL mid-save leaves
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    (tmp_path / "run" / "run.json.tmp").write_text("{")
    RunDir.create(tmp_path / "run", overwrite=True).release()
    assert not stale.exists() and not (tmp_path / "run" / "run.json.tmp").exists()


# ----------------------------------------------------------------------------- 5. silent wrong answers
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"std": [0, 0, 0]}, "std must be a list of finite numbers, each > 0"),
        ({"mean": 0.5}, "mean must be a list of finite numbers"),
        ({"label_names": ["cat", "dog"]}, "label_names has 2 names for 10 classes"),
        ({"model_kwargs": [1, 2]}, "model_kwargs must be a JSON object"),
        ({"num_classes": -1}, "num_classes must be an integer >= 0"),
    ],
)
def test_header_values_are_checked_where_they_are_read(gap_file, tmp_path, changes, message):
    _, tensors = gap_file
    path = _file_with_header(tmp_path / "h.safetensors", tensors, _header(**changes))
    for load in (zoo.load, lambda p: zoo.create("modern_gap_cnn", weights=p)):
        with pytest.raises(WeightsError, match=message):
            load(path)


def test_a_16_bit_png_is_read_by_its_bit_depth(tmp_path):
    grey = np.full((32, 32), 32768, dtype=np.uint16)  # mid-grey at 16 bits
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    from zoo.data import read_image

    pixels = read_image(tmp_path / "grey16.png", (32, 32))
    assert pixels.shape == (3, 32, 32) and int(pixels.max()) == 128  # not 255 (white), as Pillow's convert gives
    Image.fromarray(np.full((32, 32), 0.5, dtype=np.float32)).save(tmp_path / "float.tif")  # Pillow mode "F"
    with pytest.raises(DataError, match="float.tif: a 32-bit float image has no fixed range; expected 8- or 16-bit"):
        read_image(tmp_path / "float.tif", (32, 32))  # not an all-black image


def test_a_photo_is_read_in_its_exif_orientation(tmp_path):
    stored = np.zeros((16, 32, 3), dtype=np.uint8)  # stored landscape, left half white
    stored[:, :16] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown rotated 90 degrees clockwise, as a phone held upright writes it
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=100)
    from zoo.data import read_image

    pixels = read_image(tmp_path / "photo.jpg", (32, 16))  # shown portrait: 32 high, 16 wide, white on top
    assert pixels[:, :12].min() > 200 and pixels[:, 20:].max() < 50


def test_evaluation_and_prediction_never_reinitialise_anything(tmp_path, cifar10_dir, capsys):
    path = tmp_path / "seven.safetensors"
    zoo.save_weights(zoo.create("resnet20", num_classes=7), path)
    rc = eval_main(["resnet20", "--weights", str(path), "--data-dir", str(cifar10_dir)])
    one_line_error(capsys, rc, expect="the model predicts 7 classes but the data has 10")
    other = tmp_path / "ten.safetensors"
    zoo.save_weights(zoo.create("modern_gap_cnn"), other)
    rc = eval_main(["resnet20", "--weights", str(other), "--data-dir", str(cifar10_dir)])
    one_line_error(capsys, rc, expect="does not fit resnet20")


@pytest.mark.parametrize(
    ("main", "argv", "expect"),
    [
        (eval_main, ["modern_gap_cnn.cifar10", "--limit", "-5"], "expected an integer >= 1, got -5"),
        (eval_main, ["modern_gap_cnn.cifar10", "--batch-size", "0"], "expected an integer >= 1, got 0"),
        (predict_main, ["modern_gap_cnn.cifar10", "x.png", "--top-k", "0"], "expected an integer >= 1, got 0"),
        (predict_main, ["modern_gap_cnn.cifar10", "x.png", "--top-k", "-1"], "expected an integer >= 1, got -1"),
        (export_main, ["resnet20", "--num-classes", "-1"], "expected an integer >= 0, got -1"),
        (list_main, ["--max-params", "nan"], "expected a finite number"),
        (train_main, ["resnet20", "--batch-size", "0", "--data-dir", "nowhere"], "batch_size must be an integer >= 1"),
    ],
)
def test_out_of_range_numbers_are_refused_where_they_are_read(main, argv, expect, capsys):
    with pytest.raises(SystemExit) as done:  # argparse's own exit for a bad flag value
        rc = main(argv)
        raise SystemExit(rc)
    one_line_error(capsys, done.value.code, expect=expect)


# ----------------------------------------------------------------------------- 6. mistakes end in one line
def test_broken_cifar_files_name_the_file(tmp_path, capsys):
    root = write_cifar10(tmp_path / "zero", layouts=("bin",))
    (root / "cifar-10-batches-bin" / "data_batch_2.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"data_batch_2.bin is truncated or not a CIFAR binary file: 0 bytes"):
        load_cifar("cifar10", "train", root, download=False)
    rc = train_main(["modern_gap_cnn", "--data-dir", str(root), "--no-download", "--out", str(tmp_path / "runs")])
    one_line_error(capsys, rc, expect="data_batch_2.bin is truncated")
    assert not (tmp_path / "runs").exists()  # nothing was written
    root = write_cifar10(tmp_path / "short", layouts=("bin",))
    batch = root / "cifar-10-batches-bin" / "data_batch_1.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DataError, match="data_batch_1.bin is truncated"):
        load_cifar("cifar10", "train", root, download=False)
    root = write_cifar10(tmp_path / "shape", layouts=("py",))
    import pickle

    with open(root / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    with pytest.raises(DataError, match=r"data_batch_3: data uint8 \(4, 100\)"):
        load_cifar("cifar10", "train", root, download=False)


def test_an_unreadable_image_in_a_folder_is_named(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / cls / "ok.png")
    (tmp_path / "b" / "broken.jpg").write_text("not a jpeg")
    with pytest.raises(DataError, match=r"broken.jpg: not a readable image"):
        load_folder(tmp_path)


def test_a_decompression_bomb_is_one_error_and_the_other_images_are_still_reported(tmp_path, monkeypatch, capsys):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "small.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 = 4096 > 2 x 1000: Pillow's bomb error
    rc = predict_main(["modern_gap_cnn.cifar10", str(tmp_path / "small.png"), str(tmp_path / "bomb.png")])
    out, err = capsys.readouterr()
    assert rc == 2 and "small.png: " in out and "%" in out.splitlines()[0] and "Traceback" not in err
    assert "bomb.png: not a readable image" in err


@pytest.mark.parametrize(
    ("setup", "expect"),
    [
        (lambda d: d.mkdir(), "cannot read it"),
        (lambda d: d.write_text("7"), "expected a mapping of TrainConfig fields, got int"),
        (lambda d: d.write_text('{"epochs": "ten"}'), "epochs must be an integer >= 1, got 'ten'"),
        (lambda d: d.write_text('{"epochs": '), "not valid JSON"),
    ],
    ids=["directory", "bare-number", "wrong-type", "broken"],
)
def test_config_file_mistakes_name_the_file(tmp_path, capsys, setup, expect):
    path = tmp_path / "c.json"
    setup(path)
    rc = train_main(["modern_gap_cnn", "--config", str(path), "--data-dir", str(tmp_path / "none")])
    one_line_error(capsys, rc, expect=expect)


def test_resume_from_a_broken_run_json(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text("{broken")
    (run / "checkpoint.safetensors").write_bytes(b"x")
    one_line_error(capsys, train_main(["--resume", str(run)]), expect="run.json is not valid JSON")


def test_outputs_under_a_file_are_one_line(tmp_path, cifar10_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    rc = train_main(
        [
            "modern_gap_cnn",
            "--data-dir",
            str(cifar10_dir),
            "--out",
            str(blocker / "runs"),
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--no-progress",
        ]
    )
    one_line_error(capsys, rc, expect="is a file, not a folder")
    one_line_error(capsys, export_main(["resnet20", "--output", str(blocker / "m.onnx")]), expect="is a file, not a")
    one_line_error(capsys, export_main(["resnet20", "--output", str(tmp_path)]), expect="is a folder; expected a file")
    weights_file = tmp_path / "w.safetensors"
    zoo.save_weights(zoo.create("modern_gap_cnn"), weights_file)
    rc = eval_main([str(weights_file), "--data-dir", str(cifar10_dir), "--plot", str(blocker / "c.png")])
    one_line_error(capsys, rc, expect="--plot")
    for plot, expect in ((tmp_path, "is a folder"), (tmp_path / "c.xyz", "expected a file name ending in .")):
        rc = eval_main([str(weights_file), "--data-dir", str(cifar10_dir), "--plot", str(plot)])
        one_line_error(capsys, rc, expect=expect)


def test_a_missing_device_in_eval(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line_error(capsys, eval_main(["modern_gap_cnn.cifar10", "--device", "cuda"]), expect="CUDA is not available")


def test_publish_of_weights_without_a_zoo_header(tmp_path, capsys):
    from script_loader import load_script

    publish = load_script(Path(__file__).resolve().parents[1] / "tools" / "publish.py")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "metrics.csv").write_text("epoch\n1\n")
    save_file({"w": torch.zeros(2)}, run / "last.safetensors")
    one_line_error(capsys, publish.main([str(run), "--tag", "x"]), expect="no zoo header")


# ----------------------------------------------------------------------------- 7. a broken plugin builder
def test_a_plugin_whose_builder_fails_is_skipped_by_zoo_list(tmp_path, monkeypatch, capsys):
    (tmp_path / "plug_badbuilder.py").write_text(
        "import zoo\n@zoo.register_model\ndef plugin_broken_net(**kw):\n    raise RuntimeError('broken builder')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib.metadata.EntryPoint("plug_badbuilder", "plug_badbuilder", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: eps)
    before = dict(registry._models)
    registry._plugins_loaded = False
    try:
        with pytest.warns(RuntimeWarning, match="plugin_broken_net.*failed to build and was skipped"):
            assert list_main([]) == 0
        out = capsys.readouterr().out
        assert "resnet20" in out and "plugin_broken_net" not in out
        with pytest.warns(RuntimeWarning):
            assert "resnet20" in zoo.list_models(max_params=10**6)
    finally:
        registry._models.clear()
        registry._models.update(before)
        registry._plugins_loaded = True
        sys.modules.pop("plug_badbuilder", None)
