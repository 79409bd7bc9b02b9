"""Fixtures: tiny fake CIFAR data in the official layouts, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakedata import write_cifar10, write_cifar100


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
