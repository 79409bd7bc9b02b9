"""Whatever a user trains on, as in-memory `Split`s: a data set name, a folder, image tensors, or a Dataset.

The engine keeps every split as one uint8 ``(N, C, H, W)`` tensor (on the training device) and augments batches
there, so other inputs are converted once: float images in [0, 1] are rounded to uint8, and a map-style
``torch.utils.data.Dataset`` is read item by item (with a progress bar) after checking that it fits in memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data
from tqdm.auto import tqdm

from ..errors import DataError
from .cifar import CIFAR_DATASETS, Split, load_cifar
from .folder import load_folder_splits

__all__ = ["DataSource", "as_split", "carve", "load_splits", "split_indices"]

DataSource = str | os.PathLike[str] | tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset
_EXPECTED = (
    "a data set name (cifar10, cifar100), an image folder, (images, labels) tensors, a map-style Dataset, or a "
    "dict of those with 'train' and 'test' or 'val' keys"
)


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux
        return None


def _to_uint8(images: torch.Tensor, what: str) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise DataError(f"{what}: expected uint8 images or float images in [0, 1], got {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        raise DataError(f"{what}: float images hold NaN or Inf; expected values in [0, 1]")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise DataError(
            f"{what}: float images must hold values in [0, 1] (not yet normalised), got [{low:.3g}, {high:.3g}]"
        )
    return (images * 255).round_().to(torch.uint8)


def _from_tensors(images: Any, labels: Any, classes: tuple[str, ...] | None, what: str) -> Split:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise DataError(
            f"{what}: expected (images, labels) tensors, got ({type(images).__name__}, {type(labels).__name__})"
        )
    if images.ndim != 4 or labels.shape != (len(images),) or labels.is_floating_point() or len(images) == 0:
        raise DataError(
            f"{what}: expected images (N, C, H, W) and integer labels (N,), got {tuple(images.shape)} and "
            f"{labels.dtype} {tuple(labels.shape)}"
        )
    labels = labels.to(torch.int64).cpu()
    if int(labels.min()) < 0:
        raise DataError(f"{what}: labels must be >= 0, got {int(labels.min())}")
    n_classes = int(labels.max()) + 1
    classes = classes or tuple(str(i) for i in range(n_classes))
    if n_classes > len(classes):
        raise DataError(f"{what}: label {n_classes - 1} but only {len(classes)} class names")
    return Split(_to_uint8(images.cpu(), what).contiguous(), labels, tuple(classes))


def _item_array(image: Any) -> np.ndarray:
    """One Dataset image (PIL image, CHW tensor, HWC array) as uint8 CHW."""
    if isinstance(image, torch.Tensor):
        return _to_uint8(image.unsqueeze(0), "a Dataset image")[0].numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype != np.uint8:
        raise DataError(f"a Dataset image: expected a PIL image, a uint8 HWC array or a CHW tensor, got {array.dtype}")
    return array.transpose(2, 0, 1)


def _from_dataset(dataset: torch.utils.data.Dataset, what: str, progress: bool) -> Split:
    """Read a map-style Dataset of ``(image, label)`` once into memory."""
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise DataError(f"{what}: expected a map-style Dataset (with __len__ and __getitem__)")
    n = len(dataset)
    if n == 0:
        raise DataError(f"{what}: the Dataset is empty")
    first = _item_array(dataset[0][0])
    need, free = n * first.nbytes, _available_memory()
    if free is not None and need > free:
        raise DataError(
            f"{what}: {n:,} images of shape {first.shape} need {need / 2**30:.1f} GiB as uint8 but only "
            f"{free / 2**30:.1f} GiB of memory is free; train on a subset or a smaller image size"
        )
    images = np.empty((n, *first.shape), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in tqdm(range(n), desc=f"reading {what}", unit="img", disable=not progress, leave=False):
        image, label = dataset[i]
        array = _item_array(image)
        if array.shape != first.shape:
            raise DataError(f"{what}: image {i} has shape {array.shape}, image 0 {first.shape}; resize them alike")
        images[i], labels[i] = array, int(label)
    classes = getattr(dataset, "classes", None)
    classes = tuple(classes) if isinstance(classes, list | tuple) and all(isinstance(c, str) for c in classes) else None
    return _from_tensors(torch.from_numpy(images), torch.from_numpy(labels), classes, what)


def as_split(
    source: Any, what: str = "data", *, classes: tuple[str, ...] | None = None, progress: bool = True
) -> Split:
    """One split from a `Split`, ``(images, labels)`` tensors or a map-style Dataset."""
    if isinstance(source, Split):
        return source
    if isinstance(source, tuple | list) and len(source) == 2 and isinstance(source[0], torch.Tensor):
        return _from_tensors(source[0], source[1], classes, what)
    if isinstance(source, torch.utils.data.Dataset):
        return _from_dataset(source, what, progress)
    raise DataError(f"{what}: expected {_EXPECTED}, got {type(source).__name__}")


def load_splits(
    data: Any,
    *,
    dataset: str = "cifar10",
    data_dir: str | None = None,
    download: bool = True,
    input_size: tuple[int, int] = (32, 32),
    progress: bool = True,
) -> tuple[Split, Split | None]:
    """``(train, test)`` for ``data``; ``None`` means the config's ``dataset`` (``cifar10``, ``cifar100`` or
    ``folder:PATH``). A test split may be missing (a folder without ``val/`` or ``test/``, training tensors alone)."""
    if data is None:
        data = dataset
    if isinstance(data, str | os.PathLike):
        name = str(data)
        if name in CIFAR_DATASETS:
            train = load_cifar(name, "train", data_dir, download=download)
            return train, load_cifar(name, "test", data_dir, download=download)
        path = name[len("folder:") :] if name.startswith("folder:") else name
        if name.startswith("folder:") or Path(path).is_dir():
            return load_folder_splits(path, input_size)
        raise DataError(f"unknown data set {name!r}; expected {_EXPECTED}")
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {"train", "val", "test"})
        if "train" not in data or unknown:
            raise DataError(f"a data dict needs a 'train' entry and 'test' or 'val' (got keys {sorted(data)})")
        train = as_split(data["train"], "train data", progress=progress)
        held = data.get("test", data.get("val"))
        return train, None if held is None else as_split(held, "test data", classes=train.classes, progress=progress)
    return as_split(data, "train data", progress=progress), None


def split_indices(
    n: int, *, val_split: int = 0, seed: int = 0, limit_train: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(held, trained)``: the sorted indices of the ``val_split`` of ``n`` training images that ``--val-split`` and
    ``--seed`` hold out, and of those the run trains on (the first ``limit_train`` of the rest; all if None)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:val_split].sort().values, order[val_split:].sort().values[:limit_train]


def carve(
    train: Split,
    test: Split | None,
    *,
    val_split: int = 0,
    seed: int = 0,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> tuple[Split, Split | None, Split | None]:
    """``(train, val, test)``: ``val_split`` images carved from ``train`` by a seeded permutation, then the limits."""
    if val_split and not 0 < val_split < len(train):
        raise DataError(f"val_split must be between 1 and {len(train) - 1} (the training images - 1), got {val_split}")
    val = None
    if val_split or limit_train:
        held, trained = split_indices(len(train), val_split=val_split, seed=seed, limit_train=limit_train)
        val, train = train.subset(held) if val_split else None, train.subset(trained)
    if limit_test and test is not None:
        test = test.subset(slice(limit_test))
    return train, val, test
