"""Maintainer tools: publishing a run's weights (tools/publish.py) and the generated docs (tools/gen_docs.py)."""

import dataclasses
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
from script_loader import load_script

import zoo
from zoo.engine import Trainer, build_config
from zoo.weights import file_sha256, read_weights

ROOT = Path(__file__).resolve().parents[1]
publish_mod = load_script(ROOT / "tools" / "publish.py")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """`zoo.publish` writing into tmp_path (package, docs) instead of the repo; the registry restored after."""
    monkeypatch.setattr(publish_mod, "PACKAGE", tmp_path / "pkg")
    monkeypatch.setattr(publish_mod, "REPO", tmp_path)
    (tmp_path / "pkg" / "pretrained").mkdir(parents=True)
    (tmp_path / "docs" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "data" / "model_speed.json", tmp_path / "docs" / "data")
    info = zoo.model_info("modern_gap_cnn")
    saved = (dict(info.weights), info.default_tag)
    yield tmp_path
    info.weights.clear()
    info.weights.update(saved[0])
    info.default_tag = saved[1]


def test_publish_ships_a_run_with_card_and_pinned_hash(tiny_run, fake500, sandbox):
    entry = publish_mod.publish(tiny_run, "unittest", data_dir=str(fake500), data_note="fake data")
    shipped = sandbox / "pkg" / entry["file"]
    assert file_sha256(shipped) == entry["sha256"]
    manifest = json.loads((sandbox / "pkg" / "pretrained" / "manifest.json").read_text())
    assert manifest["modern_gap_cnn"]["unittest"]["metrics"] == entry["metrics"]
    card = (sandbox / entry["card"]).read_text()
    assert entry["sha256"] in card and "fake data" in card and "## Sessions" not in card
    assert (sandbox / "docs" / "cards" / "modern_gap_cnn.unittest.metrics.csv").is_file()
    _, header = read_weights(shipped)
    assert header["metrics"] == entry["metrics"] and "zoo.train" in header["command"]
    assert len(header["sessions"]) == 1 and entry["storage"] in {"fp16", "fp32"}
    page = (sandbox / "docs" / "models.md").read_text()
    assert "[unittest](cards/modern_gap_cnn.unittest.md)" in page and "CPU train img/s" in page  # speed kept


def test_publish_names_a_distillation_teacher_by_its_hash(fake500, sandbox, tmp_path):
    teacher = "modern_gap_cnn.cifar10"
    overrides = {"data_dir": str(fake500), "out": str(tmp_path), "run_name": "kd", "epochs": 1, "batch_size": 16}
    cfg = build_config("modern_gap_cnn", overrides={**overrides, "progress": False, "teacher": teacher})
    Trainer(cfg, argv=["python", "-m", "zoo.train", "modern_gap_cnn", "--teacher", teacher]).fit()
    entry = publish_mod.publish(tmp_path / "kd", "unittest", data_dir=str(fake500), data_note="fake data")
    card = (sandbox / entry["card"]).read_text()
    sha = zoo.model_info("modern_gap_cnn").weights["cifar10"].sha256
    assert f"| teacher | `{teacher}` (sha256 `{sha}`), distillation weight 0.5, temperature 4.0 |" in card


def test_verify_weights_agrees_with_a_fresh_card_and_catches_a_changed_one(tiny_run, fake500, sandbox, capsys):
    verify = load_script(ROOT / "benchmarks" / "verify_weights.py")
    entry = publish_mod.publish(tiny_run, "unittest", data_dir=str(fake500), data_note="fake data")
    info = zoo.model_info("modern_gap_cnn")
    spec = dataclasses.replace(info.weights["unittest"], file=str(sandbox / "pkg" / entry["file"]))  # absolute path
    info.weights["unittest"] = spec
    args = ["--data-dir", str(fake500), "--models", "modern_gap_cnn.unittest"]
    assert verify.main(args) == 0
    out = capsys.readouterr().out
    assert f"| modern_gap_cnn.unittest | top1_tta2 | {entry['metrics']['top1_tta2']:.2f} |" in out
    assert "all 1 agree with their cards" in out
    info.weights["unittest"] = dataclasses.replace(spec, metrics={**spec.metrics, "top1": spec.metrics["top1"] + 0.02})
    assert verify.main([*args, "--no-tta"]) == 1
    out = capsys.readouterr().out
    assert "| top1 |" in out and "| NO |" in out and "top1_tta" not in out and "1 of 1 disagree" in out
    assert verify.main(["--data-dir", str(fake500), "--models", "modern_gap_cnn"]) == 1  # a name without a tag
    assert "not published weights (NAME.TAG): modern_gap_cnn" in capsys.readouterr().err


def test_publish_refuses_bad_tags_and_unfinished_runs_before_writing(tiny_run, fake500, sandbox, capsys, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def download(*args, **kwargs):
        raise AssertionError("zoo.publish must not download: the card names the data copy it measured")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", download)
    assert publish_mod.main([str(tiny_run), "--tag", "Bad.Tag", "--data-dir", str(fake500)]) == 2
    assert "weight tags are lower_snake_case" in capsys.readouterr().err
    unfinished = sandbox / "unfinished"
    shutil.copytree(tiny_run, unfinished)
    (unfinished / "last.safetensors").unlink()
    assert publish_mod.main([str(unfinished), "--tag", "unittest", "--data-dir", str(fake500)]) == 2
    assert "has not finished (no last.safetensors)" in capsys.readouterr().err
    assert publish_mod.main([str(sandbox / "nowhere"), "--tag", "unittest"]) == 2
    assert "is not a run folder: run.json and metrics.csv missing" in capsys.readouterr().err
    assert publish_mod.main([str(tiny_run), "--tag", "unittest", "--data-dir", str(sandbox / "no-data")]) == 2
    assert "cifar10 not found in" in capsys.readouterr().err
    assert not (sandbox / "pkg" / "pretrained" / "manifest.json").exists() and not (sandbox / "docs" / "cards").exists()


def test_card_of_a_resumed_run_lists_its_sessions(fake500, sandbox):
    cfg = build_config(
        "modern_gap_cnn",
        overrides={"data_dir": str(fake500), "out": str(sandbox), "run_name": "r", "epochs": 1, "batch_size": 16},
    )
    stop = Trainer(
        cfg, argv=["python", "-m", "zoo.train", "modern_gap_cnn"], callbacks=[lambda t, e, s: t.request_stop()]
    )
    assert stop.fit()["status"] == "interrupted"
    Trainer.resume(sandbox / "r", argv=["python", "-m", "zoo.train", "--resume", "r"]).fit()
    entry = publish_mod.publish(sandbox / "r", "unittest", data_dir=str(fake500))
    card = (sandbox / entry["card"]).read_text()
    assert "| machine | 2 sessions, see below |" in card and "## Sessions" in card
    assert "| command | `python -m zoo.train modern_gap_cnn` |" in card  # what started the run, not the resume
    assert (
        "| 1 | 0.00 → 0.20 |" in card and "| 2 | 0.20 → 1.00 |" in card and "`python -m zoo.train --resume r`" in card
    )


def test_card_runs_a_killed_session_to_where_the_next_one_resumed():
    def pos(step, seconds):
        return {"global_step": step, "steps_per_epoch": 10, "train_time_s": seconds}

    killed = {"from": pos(0, 0.0), "argv": ["python", "-m", "zoo.train", "x"]}  # no "to": never got to write it
    stale = {"from": pos(20, 40.0), "to": pos(20, 40.0), "argv": ["resume"]}  # its start record, never updated
    last = {"from": pos(35, 70.0), "to": pos(50, 100.0), "argv": ["resume"]}
    table = "\n".join(publish_mod._sessions_section([killed, stale, last]))
    assert "| 1* | 0.00 → 2.00 | 40 s |" in table and "| 2* | 2.00 → 3.50 | 30 s |" in table
    assert "| 3 | 3.50 → 5.00 | 30 s |" in table and "Sessions 1, 2 ended without recording" in table


def test_publish_can_upload_to_the_hub(tiny_run, fake500, sandbox, monkeypatch, capsys):
    from fake_hub import FakeHub

    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        argv = [str(tiny_run), "--tag", "unittest", "--data-dir", str(fake500), "--hub", "me/gap"]
        assert publish_mod.main(argv) == 0
    files = hub.repos["me/gap"]
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert "# modern_gap_cnn.unittest" in files["README.md"].decode()  # the model card travels
    assert capsys.readouterr().out.strip().endswith("/commit/" + hub.commits["me/gap"])


def test_pack_runs_fills_few_files_under_the_cap_cuts_big_runs_into_parts_and_names_what_does_not_fit(tmp_path, capsys):
    pack = load_script(ROOT / "tools" / "pack_runs.py")
    for name, mib in [("big", 1.5), ("a", 0.6), ("b", 0.5), ("c", 0.3), ("unfinished", 0.1)]:
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"result": {}} if name != "unfinished" else {}))
        (run / "last.safetensors").write_bytes(b"\0" * int(mib * 2**20))
        (run / "checkpoint.safetensors").write_bytes(b"\0" * 100)  # not what publish reads: stays behind
    assert pack.main([str(tmp_path / "runs"), str(tmp_path / "out"), "--max-files", "2", "--max-mib", "1"]) == 1
    out = capsys.readouterr().out
    assert "left out: " in out and "big (1.5 MiB does not fit)" in out
    archives = sorted((tmp_path / "out").iterdir())
    assert [a.name for a in archives] == ["runs-0.tar.gz", "runs-1.tar.gz"]
    members = [_members(a) for a in archives]
    assert members == [
        ["a/last.safetensors", "a/run.json", "c/last.safetensors", "c/run.json"],
        ["b/last.safetensors", "b/run.json"],
    ]  # first fit, largest first; 0.9 MiB and 0.5 MiB
    assert pack.main([str(tmp_path / "runs" / "a"), str(tmp_path / "out2")]) == 0
    # Two more files: the run too big for one is cut into parts, which put back together are its tar.
    assert pack.main([str(tmp_path / "runs"), str(tmp_path / "out3"), "--max-files", "4", "--max-mib", "1"]) == 0
    parts = sorted((tmp_path / "out3").glob("big.tar.part-*"))
    assert [p.name for p in parts] == ["big.tar.part-00", "big.tar.part-01"]
    assert all(p.stat().st_size <= 2**20 for p in parts)
    (tmp_path / "big.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "big.tar") as tar:
        assert sorted(tar.getnames()) == ["big/last.safetensors", "big/run.json"]
        assert len(tar.extractfile("big/last.safetensors").read()) == int(1.5 * 2**20)
    assert pack.main([str(tmp_path / "runs" / "big"), str(tmp_path / "out4"), "--max-mib", "1"]) == 0  # one run
    assert sorted(p.name for p in (tmp_path / "out4").iterdir()) == ["big.tar.part-00", "big.tar.part-01"]


@pytest.mark.slow
def test_gpu_session_script_runs_every_stage_on_a_cpu(tmp_path):
    """tools/gpu_session.sh works the first time a GPU is lent: the same script, on a CPU, with tiny data."""
    import subprocess

    from fakedata import write_cifar10

    data = write_cifar10(tmp_path / "data", n_train=96, n_test=40, layouts=("bin",))
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"), "DATA": str(data)}
    zoo_flags = "--device cpu --models resnet20 --epochs 1 --limit-train 32 --val-split 48 --jobs 1"
    script = str(ROOT / "tools" / "gpu_session.sh")
    bad = subprocess.run(["bash", script, "nope"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "expected tta, screen or zoo" in bad.stderr
    unset = subprocess.run(["bash", script, "screen"], env=env, capture_output=True, text=True)
    assert unset.returncode != 0 and "SET: the change of fastest to screen" in unset.stderr
    assert not (tmp_path / "work").exists()  # both refused before any work
    subprocess.run(["bash", script, "zoo"], env={**env, "EXTRA": zoo_flags}, check=True, capture_output=True)
    names = _members(tmp_path / "out" / "runs-0.tar.gz")
    assert {"resnet20-final/last.safetensors", "resnet20-final/metrics.csv", "resnet20-val/run.json"} <= set(names)
    tiny = "epochs=1 batch_size=16 data_init=16 eval_batch_size=20 tta=1"
    tta_flags = f"--seeds 0 --set {tiny} --set-baseline {tiny}"
    subprocess.run(["bash", script, "tta"], env={**env, "EXTRA": tta_flags}, check=True, capture_output=True)
    saved = json.loads((tmp_path / "out" / "time_to_accuracy.gpu.json").read_text())
    assert [s["recipe"] for s in saved["summaries"]] == ["fast", "fastest"]
    screen = {"SET": f"{tiny} muon_lr=0.3", "EXTRA": f"--set-baseline {tiny}", "VAL": "48", "WORKERS": "2"}
    subprocess.run(["bash", script, "screen"], env={**env, **screen, "PAIRS": "1"}, check=True, capture_output=True)
    saved = json.loads((tmp_path / "out" / "screen.json").read_text())
    base, cand = saved["summaries"]
    assert [r["seed"] for r in base["runs"]] == [100, 101] and [r["seed"] for r in cand["runs"]] == [100, 101]
    assert base["split"] == "val" and cand["overrides"]["muon_lr"] == 0.3 and "accuracy_diff_mean" in cand


def _members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def test_filter_norms_compares_each_filter_bank_with_a_fresh_init_of_the_same_seed(tmp_path, capsys):
    filter_norms = load_script(ROOT / "tools" / "filter_norms.py")
    torch.manual_seed(7)
    model = zoo.create("resnet20")
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 4:
                p.mul_(3)
    zoo.save_weights(model, tmp_path / "last.safetensors", seed=7)
    rows = filter_norms.filter_norms(tmp_path)  # a run folder: its last.safetensors
    assert len(rows) == sum(p.ndim == 4 for p in model.parameters())
    assert all(end == pytest.approx(3 * start, rel=1e-5) for _, _, start, end in rows)
    assert filter_norms.main([str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    zoo.save_weights(model, tmp_path / "anonymous.safetensors", weights_only=True)
    assert filter_norms.main([str(tmp_path / "anonymous.safetensors")]) == 2
    assert "names no architecture" in capsys.readouterr().err
