"""CIFAR-10/100 in their official layouts, read once into one uint8 tensor per split.

Search order for the files: ``data_dir`` (``--data-dir``), else ``$ZOO_DATA``, else ``~/.cache/zoo/data``
(``$XDG_CACHE_HOME`` respected). The binary layouts are preferred (no pickle at all); the python layouts
are read with a restricted unpickler that only admits the numpy array types CIFAR files contain. Local
files are not md5-checked (so re-encoded copies work); downloads are, by torchvision's helpers.
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, DatasetNotFoundError
from .constants import CIFAR10_CLASSES

__all__ = ["CIFAR_DATASETS", "Split", "default_data_dir", "find_cifar", "load_cifar"]


@dataclass(frozen=True)
class Split:
    """A whole split in memory: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: slice | torch.Tensor) -> Split:
        """The images (and their labels) at ``index``: a slice or an index tensor."""
        return Split(self.images[index], self.labels[index], self.classes)


@dataclass(frozen=True)
class CifarSpec:
    name: str
    num_classes: int
    bin_dir: str
    bin_train: tuple[str, ...]
    bin_test: tuple[str, ...]
    py_dir: str
    py_train: tuple[str, ...]
    py_test: tuple[str, ...]
    label_bytes: int  # bytes before the pixels in a binary record; the fine label is the last of them
    py_label_key: str
    url: str
    md5: str


CIFAR_DATASETS = {
    "cifar10": CifarSpec(
        "cifar10",
        10,
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        ("test_batch.bin",),
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        1,
        "labels",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
    ),
    "cifar100": CifarSpec(
        "cifar100",
        100,
        "cifar-100-binary",
        ("train.bin",),
        ("test.bin",),
        "cifar-100-python",
        ("train",),
        ("test",),
        2,
        "fine_labels",
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
    ),
}


def default_data_dir() -> Path:
    """``$ZOO_DATA``, else ``$XDG_CACHE_HOME/zoo/data`` (``~/.cache/zoo/data``)."""
    if os.environ.get("ZOO_DATA"):
        return Path(os.environ["ZOO_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "zoo" / "data"


def _layout(root: Path, spec: CifarSpec) -> tuple[str, Path] | None:
    for kind, folder, files in (
        ("bin", spec.bin_dir, spec.bin_train + spec.bin_test),
        ("py", spec.py_dir, spec.py_train + spec.py_test),
    ):
        if all((root / folder / f).is_file() for f in files):
            return kind, root / folder
    return None


def find_cifar(name: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> tuple[str, Path]:
    """Locate (or download) an official CIFAR layout; return ``("bin" | "py", folder)``."""
    if name not in CIFAR_DATASETS:
        raise ConfigError(f"unknown data set {name!r}; expected one of {', '.join(CIFAR_DATASETS)}")
    spec = CIFAR_DATASETS[name]
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    found = _layout(root, spec)
    if found is not None:
        return found
    error = None
    if download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(spec.url, str(root), md5=spec.md5)
            found = _layout(root, spec)
        except Exception as exc:  # offline, proxy, disk full: report it with the instructions below
            error = exc
    if found is not None:
        return found
    expected = (
        f"{root / spec.bin_dir}/{{{','.join(spec.bin_train + spec.bin_test)}}} or "
        f"{root / spec.py_dir}/{{{','.join(spec.py_train + spec.py_test)}}}"
    )
    reason = f" Download failed: {error}." if error else ""
    raise DatasetNotFoundError(
        f"{name} not found in {root}: expected {expected}.{reason} Download {spec.url} and extract it into {root}, "
        "or point --data-dir / $ZOO_DATA at a folder holding an official layout."
    )


class _CifarUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's python batches contain: dicts, lists, bytes, str and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file (only arrays allowed)")


_PIXELS = 3 * 32 * 32


def _read_py(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    expected = f"expected a CIFAR python batch: a dict with b'data' (N x {_PIXELS} uint8) and b'{label_key}' (N ints)"
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:  # what a damaged pickle raises
        raise DataError(f"{path} is truncated or not a CIFAR file ({type(exc).__name__}: {exc}); {expected}") from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key.encode() not in batch:
        raise DataError(f"{path}: {expected}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key.encode()])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS or labels.shape != (len(data),):
        raise DataError(f"{path}: data {data.dtype} {data.shape} and {len(labels)} labels; {expected}")
    if not len(data):
        raise DataError(f"{path} holds no images; {expected}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_bin(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + _PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataError(
            f"{path} is truncated or not a CIFAR binary file: {raw.size} bytes, expected a non-zero multiple of "
            f"{record} ({label_bytes} label byte(s) + {_PIXELS} pixels per image)"
        )
    raw = raw.reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1].astype(np.int64)


def _class_names(kind: str, folder: Path, spec: CifarSpec) -> tuple[str, ...]:
    if spec.name == "cifar10":
        return CIFAR10_CLASSES
    if kind == "bin" and (folder / "fine_label_names.txt").is_file():
        return tuple(line for line in (folder / "fine_label_names.txt").read_text().split() if line)
    if kind == "py" and (folder / "meta").is_file():
        with open(folder / "meta", "rb") as f:
            meta = _CifarUnpickler(f, encoding="bytes").load()
        return tuple(n.decode() for n in meta[b"fine_label_names"])
    return tuple(str(i) for i in range(spec.num_classes))


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, split: str, kind: str, folder: str) -> Split:
    spec = CIFAR_DATASETS[name]
    files = (
        (spec.bin_train if split == "train" else spec.bin_test)
        if kind == "bin"
        else (spec.py_train if split == "train" else spec.py_test)
    )
    parts = [
        _read_bin(Path(folder) / f, spec.label_bytes)
        if kind == "bin"
        else _read_py(Path(folder) / f, spec.py_label_key)
        for f in files
    ]
    images = torch.from_numpy(np.ascontiguousarray(np.concatenate([p[0] for p in parts])))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    if labels.numel() and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(f"{folder}: labels outside 0..{spec.num_classes - 1}; is this really {name}?")
    return Split(images, labels, _class_names(kind, Path(folder), spec))


def load_cifar(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Split:
    """One split (``"train"`` or ``"test"``) of CIFAR-10/100 as uint8 NCHW images, decoded once per process."""
    if split not in {"train", "test"}:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    kind, folder = find_cifar(name, data_dir, download=download)
    return _load_cached(name, split, kind, str(folder.resolve()))
