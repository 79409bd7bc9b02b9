"""The engine under torchrun: two gloo processes on CPU, tiny fake data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fakedata import write_cifar10
from safetensors.torch import load_file

import zoo
from zoo.data import load_cifar
from zoo.engine import Trainer, build_config, evaluate

pytestmark = pytest.mark.ddp
DRIVER = Path(__file__).with_name("ddp_driver.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("ddpdata"), n_train=64, n_test=41, layouts=("bin",))


@pytest.fixture(scope="module")
def two_epochs(data, tmp_path_factory):
    """One uninterrupted 2-epoch job on 2 ranks (run "two"), shared: each torchrun launch costs seconds."""
    out = tmp_path_factory.mktemp("ddp-two")
    torchrun("--data-dir", data, "--out", out, "--name", "two", "--epochs", "2")
    return out


def torchrun(*args, nproc=2, check=True):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "ZOO_DIST_TIMEOUT": "60",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(DRIVER),
        *map(str, args),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _weights(out, name, rank):
    return load_file(str(out / f"{name}.rank{rank}.safetensors"))


def test_ranks_agree_and_evaluation_counts_each_image_once(data, two_epochs):
    w0, w1 = _weights(two_epochs, "two", 0), _weights(two_epochs, "two", 1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # parameters and averaged BN statistics
    r0 = json.loads((two_epochs / "two.rank0.json").read_text())
    assert r0["n"] == 41  # 41 test images over 2 ranks: 21 + 20, none padded, none twice
    model = zoo.load(two_epochs / "two" / "last.safetensors").eval()  # written once, by rank 0
    test = load_cifar("cifar10", "test", data, download=False)
    single = evaluate(
        model,
        test,
        mean=torch.tensor(model.pretrained_cfg["mean"]),
        std=torch.tensor(model.pretrained_cfg["std"]),
        device=torch.device("cpu"),
        channels_last=True,
    )
    assert single["top1"] == pytest.approx(r0["top1"]) and single["loss"] == pytest.approx(r0["loss"], rel=1e-5)
    meta = json.loads((two_epochs / "two" / "run.json").read_text())
    assert meta["world_size"] == 2 and meta["result"]["status"] == "finished"


def test_sync_bn_two_processes_match_one_process_with_the_global_batch(data, tmp_path):
    # NCHW: oneDNN's channels_last BN backward alone moves gradients by ~5e-3 relative. A small learning rate: on
    # this tiny data BN amplifies float rounding (2e-7 after one step) about 100x per step at lr 0.05.
    torchrun(
        "--data-dir", data, "--out", tmp_path, "--name", "sync", "--sync-bn", "--batch-size", 16, "--nchw", "--lr", 0.01
    )
    cfg = build_config(
        "resnet20",
        overrides={
            "data_dir": str(data),
            "out": str(tmp_path),
            "run_name": "one",
            "epochs": 1,
            "batch_size": 16,
            "precision": "fp32",
            "progress": False,
            "plot": False,
            "eval_batch_size": 8,
            "download": False,
            "lr": 0.01,
            "channels_last": False,
        },
    )
    single = Trainer(cfg)
    single.fit()
    ref = single.model.state_dict()
    dist = _weights(tmp_path, "sync", 0)
    # How far rounding moves them depends on the CPU's kernels: up to 3e-5 on an Intel Xeon (AVX10/AMX), where
    # per-rank statistics instead of synchronised ones move the running variances by 0.17.
    for key, value in ref.items():
        assert torch.allclose(dist[key].to(value.dtype), value, atol=1e-4, rtol=1e-4), key


def test_resume_under_torchrun_is_exact(data, two_epochs, tmp_path):
    torchrun("--data-dir", data, "--out", tmp_path, "--name", "cut", "--epochs", "2", "--stop-after-epoch", "1")
    assert json.loads((tmp_path / "cut.rank1.json").read_text())["status"] == "interrupted"  # rank 1 stopped too
    torchrun("--data-dir", data, "--out", tmp_path, "--name", "cut", "--resume")
    ref, res = _weights(two_epochs, "two", 0), _weights(tmp_path, "cut", 0)
    assert all(torch.equal(ref[k], res[k]) for k in ref)


def test_a_crashing_rank_ends_the_job_with_a_clear_message(data, tmp_path):
    proc = torchrun(
        "--data-dir", data, "--out", tmp_path, "--name", "crash", "--epochs", "2", "--crash-rank", "1", check=False
    )
    assert proc.returncode != 0
    assert "injected failure on rank 1" in proc.stderr
