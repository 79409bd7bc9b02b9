"""Tiny fake data sets in the official CIFAR layouts (a few dozen images)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def fake_images(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, 32, 32) images whose mean colour depends on the label, so a model can learn them."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    base = rng.integers(0, 256, size=(num_classes, 3, 1, 1))
    noise = rng.integers(-40, 41, size=(n, 3, 32, 32))
    images = np.clip(base[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def write_cifar10(root: Path, n_train: int = 64, n_test: int = 40, layouts: tuple[str, ...] = ("bin", "py")) -> Path:
    train_x, train_y = fake_images(n_train, 10, seed=1)
    test_x, test_y = fake_images(n_test, 10, seed=2)
    batches = np.array_split(np.arange(n_train), 5)
    if "bin" in layouts:
        folder = root / "cifar-10-batches-bin"
        folder.mkdir(parents=True, exist_ok=True)
        for i, idx in enumerate(batches, 1):
            _write_bin(folder / f"data_batch_{i}.bin", train_x[idx], [train_y[idx]])
        _write_bin(folder / "test_batch.bin", test_x, [test_y])
    if "py" in layouts:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for i, idx in enumerate(batches, 1):
            _write_py(folder / f"data_batch_{i}", train_x[idx], {b"labels": train_y[idx].tolist()})
        _write_py(folder / "test_batch", test_x, {b"labels": test_y.tolist()})
    return root


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100, layouts: tuple[str, ...] = ("bin", "py")) -> Path:
    train_x, train_y = fake_images(n_train, 100, seed=3)
    test_x, test_y = fake_images(n_test, 100, seed=4)
    names = [f"class_{i:03d}" for i in range(100)]
    if "bin" in layouts:
        folder = root / "cifar-100-binary"
        folder.mkdir(parents=True, exist_ok=True)
        _write_bin(folder / "train.bin", train_x, [train_y // 5, train_y])
        _write_bin(folder / "test.bin", test_x, [test_y // 5, test_y])
        (folder / "fine_label_names.txt").write_text("\n".join(names) + "\n")
    if "py" in layouts:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        _write_py(
            folder / "train", train_x, {b"fine_labels": train_y.tolist(), b"coarse_labels": (train_y // 5).tolist()}
        )
        _write_py(folder / "test", test_x, {b"fine_labels": test_y.tolist(), b"coarse_labels": (test_y // 5).tolist()})
        with open(folder / "meta", "wb") as f:
            pickle.dump({b"fine_label_names": [n.encode() for n in names]}, f)
    return root


def _write_bin(path: Path, images: np.ndarray, label_columns: list[np.ndarray]) -> None:
    labels = np.stack(label_columns, axis=1).astype(np.uint8)
    records = np.concatenate([labels, images.reshape(len(images), -1)], axis=1)
    records.tofile(path)


def _write_py(path: Path, images: np.ndarray, labels: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"data": images.reshape(len(images), -1), **labels}, f)
