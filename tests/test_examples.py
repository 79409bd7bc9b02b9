import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
