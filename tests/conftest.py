"""Fixtures: tiny fake CIFAR data in the official layouts, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fakedata import write_cifar10, write_cifar100

import zoo
from zoo.engine import Trainer, build_config


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture(scope="session")
def cifar10_bin_dir(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10bin"), layouts=("bin",))


@pytest.fixture(scope="session")
def cifar10_py_dir(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10py"), layouts=("py",))


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory) -> Path:
    return write_cifar100(tmp_path_factory.mktemp("cifar100"))


@pytest.fixture(scope="session")
def fake500(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("fake500"), n_train=80, n_test=500, layouts=("bin",))


@pytest.fixture(scope="session")
def tiny_run(fake500, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = build_config(
        "modern_gap_cnn",
        overrides={
            "data_dir": str(fake500),
            "out": str(out),
            "run_name": "r",
            "epochs": 1,
            "batch_size": 16,
            "progress": False,
        },
    )
    Trainer(cfg, argv=["python", "-m", "zoo.train", "modern_gap_cnn"]).fit()
    return out / "r"


@pytest.fixture
def model():
    """modern_gap_cnn, seeded, in eval mode (the weights tests' model)."""
    torch.manual_seed(0)
    return zoo.create("modern_gap_cnn").eval()


@pytest.fixture
def saved(model, tmp_path):
    """``model`` saved as a zoo weight file with a metric and a recipe in its header."""
    path = tmp_path / "w.safetensors"
    zoo.save_weights(model, path, metrics={"top1": 61.3}, recipe="unit-test")
    return path
