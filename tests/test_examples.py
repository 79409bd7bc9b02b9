import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakedata import write_cifar10
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each runs a script in its own interpreter


def test_quickstart_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, check=True
    )
    assert "77130 parameters" in out.stdout and "logits: (4, 10)" in out.stdout


def test_train_example_runs(cifar10_dir, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "train_cifar10.py"),
            "--data-dir",
            str(cifar10_dir),
            "--model",
            "modern_gap_cnn",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'status': 'finished'" in out.stdout and "test_top1" in out.stdout


def test_own_model_example_trains_a_class_it_defines(tmp_path):
    data = write_cifar10(tmp_path / "data", n_train=300, n_test=40, layouts=("bin",))
    script = ROOT / "examples" / "train_your_own_model.py"
    assert len([line for line in script.read_text().splitlines() if line.strip()]) <= 20
    out = subprocess.run(
        [sys.executable, str(script), str(data)], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert "test top-1" in out and "weights-only" in out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("TinyNet-") and (run / "last.safetensors").is_file()


STUDY = ROOT / "benchmarks" / "normalization_study.py"


def test_normalization_study_quick(tmp_path, capsys):
    data = write_cifar10(tmp_path / "data", n_train=200, n_test=100, layouts=("bin",))
    out = tmp_path / "docs"
    cmd = [sys.executable, str(STUDY), "--data-dir", str(data), "--quick", "--out", str(out)]
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    store = json.loads((out / "data" / "normalization.json").read_text())
    assert store["budget"]["quick"] and len(store["results"]) == 26
    assert len(store["speed"]) == 10 and all(v > 0 for v in store["speed"].values())
    page = (out / "normalization.md").read_text()
    for heading in ("## Which normalization", "## The conv bias before BatchNorm", "## Batch size", "## What the"):
        assert heading in page
    assert "| off | 77,130 |" in page and "| on | 77,322 |" in page  # the bias costs 64 + 128 parameters
    assert (out / "figures" / "normalization.png").stat().st_size > 10_000
    assert load_script(STUDY).main(cmd[2:]) == 0  # in-process; every cell is done: it only redraws
    assert "[1/" not in capsys.readouterr().out


def test_normalization_page_is_generated_from_its_data(tmp_path):
    """docs/normalization.md is what the study's report makes of docs/data/normalization.json (not hand-edited)."""
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "docs" / "data" / "normalization.json", tmp_path / "data" / "normalization.json")
    subprocess.run(
        [sys.executable, str(STUDY), "--report-only", "--out", str(tmp_path)], check=True, capture_output=True
    )
    assert (tmp_path / "normalization.md").read_text() == (ROOT / "docs" / "normalization.md").read_text(), (
        "docs/normalization.md is stale: run python benchmarks/normalization_study.py --report-only"
    )
