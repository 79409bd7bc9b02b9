import pickle

import numpy as np
import pytest
import torch
from fakedata import fake_images, write_cifar100

from zoo.data import (
    Augment,
    BatchContext,
    batch_crop,
    batch_cutout,
    batch_flip,
    find_cifar,
    load_cifar,
    load_folder_splits,
)
from zoo.data import cifar as cifar_mod
from zoo.engine import TrainConfig
from zoo.errors import DataError, DatasetNotFoundError


def test_binary_and_python_layouts_agree(cifar10_bin_dir, cifar10_py_dir):
    for split in ("train", "test"):
        a = load_cifar("cifar10", split, cifar10_bin_dir, download=False)
        b = load_cifar("cifar10", split, cifar10_py_dir, download=False)
        assert a.images.dtype == torch.uint8 and a.images.shape[1:] == (3, 32, 32)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    train = load_cifar("cifar10", "train", cifar10_bin_dir)
    expected, labels = fake_images(64, 10, seed=1)
    assert torch.equal(train.images, torch.from_numpy(expected)) and train.classes[0] == "airplane"
    assert train.labels.tolist() == labels.tolist()


def test_binary_layout_is_preferred(cifar10_dir):
    kind, folder = find_cifar("cifar10", cifar10_dir, download=False)
    assert kind == "bin" and folder.name == "cifar-10-batches-bin"


def test_cifar100_layouts(tmp_path):
    for layout in ("bin", "py"):
        root = write_cifar100(tmp_path / layout, layouts=(layout,))
        split = load_cifar("cifar100", "train", root, download=False)
        assert len(split) == 200 and len(split.classes) == 100 and split.classes[3] == "class_003"
        assert int(split.labels.max()) >= 90


def test_missing_data_offline_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar("cifar10", "train", tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path) in msg and "data_batch_1.bin" in msg and "test_batch" in msg and "--data-dir" in msg


def test_failed_download_says_why(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="Download failed: network is unreachable"):
        find_cifar("cifar10", tmp_path)


def test_zoo_data_environment_variable(cifar10_dir, monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(cifar10_dir))
    assert find_cifar("cifar10", download=False)[1].parent == cifar10_dir


def test_python_layout_refuses_unexpected_pickle_globals(tmp_path):
    root = tmp_path / "evil"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_cifar("cifar10", "train", root, download=False)


def test_corrupt_binary_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(b"\x00" * 100)
    cifar_mod._load_cached.cache_clear()
    with pytest.raises(ValueError, match="not a CIFAR binary file"):
        load_cifar("cifar10", "test", tmp_path, download=False)


def test_folder_dataset(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls, size in (("cats", (40, 30)), ("dogs", (64, 64))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                arr = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    train, val = load_folder_splits(tmp_path)
    assert train.images.shape == (6, 3, 32, 32) and train.classes == ("cats", "dogs")
    assert val is not None and len(val) == 6 and val.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_folder_splits(tmp_path / "nope")


def test_batch_crop_shifts_content():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = batch_crop(x, 2, g, mode="zeros")
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):  # each output is some 6x6 window of the padded input
        windows = padded[i, 0].unfold(0, 6, 1).unfold(1, 6, 1).reshape(-1, 6, 6)
        assert any(torch.equal(w, out[i, 0]) for w in windows)
    reflect = batch_crop(x, 2, torch.Generator().manual_seed(0), mode="reflect")
    assert reflect.shape == x.shape and (reflect > 0).float().mean() > 0.9


def test_flip_cutout_and_determinism():
    x = torch.randint(1, 255, (64, 3, 8, 8), dtype=torch.uint8)
    flipped = batch_flip(x, torch.Generator().manual_seed(0))
    same = [torch.equal(flipped[i], x[i]) for i in range(64)]
    mirrored = [torch.equal(flipped[i], x[i].flip(2)) for i in range(64)]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54
    cut = batch_cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (cut == 0).all(1).sum(dim=(1, 2))
    assert (zeros >= 4).all() and (zeros <= 16).all()
    aug = Augment(TrainConfig(crop=2, flip=True, cutout=3))
    assert aug.names == ("crop", "flip", "cutout")
    a = aug(x, BatchContext(torch.Generator().manual_seed(5), torch.arange(64), 0, 0, 64))
    b = aug(x, BatchContext(torch.Generator().manual_seed(5), torch.arange(64), 0, 0, 64))
    assert torch.equal(a, b) and not torch.equal(a, x)


class _Images(torch.utils.data.Dataset):
    """A map-style Dataset of (PIL image, label), as torchvision's are."""

    classes = ["a", "b", "c"]

    def __init__(self, n=12):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from PIL import Image

        return Image.new("RGB", (8, 8), (i * 20, 0, 255 - i * 20)), i % 3


def test_a_dataset_is_read_into_memory_once_and_checked_to_fit(monkeypatch):
    from zoo.data import as_split, load_splits, sources

    split = as_split(_Images(), progress=False)
    assert split.images.shape == (12, 3, 8, 8) and split.images.dtype == torch.uint8
    assert split.classes == ("a", "b", "c") and split.labels.tolist() == [i % 3 for i in range(12)]
    assert split.images[5, :, 0, 0].tolist() == [100, 0, 155]
    train, test = load_splits({"train": _Images(), "val": _Images(6)}, progress=False)
    assert len(train) == 12 and len(test) == 6
    monkeypatch.setattr(sources, "_available_memory", lambda: 1000)
    with pytest.raises(DataError, match=r"12 images of shape \(3, 8, 8\) need .* GiB as uint8 but only"):
        as_split(_Images(), progress=False)
    with pytest.raises(DataError, match="expected a data set name"):
        load_splits(42)
    with pytest.raises(DataError, match="a data dict needs a 'train' entry"):
        load_splits({"test": _Images()})


def test_float_images_must_be_finite_and_in_0_1():
    from zoo.data import as_split

    labels = torch.zeros(4, dtype=torch.long)
    assert as_split((torch.full((4, 3, 8, 8), 0.5), labels)).images.unique().tolist() == [128]
    bad = torch.rand(4, 3, 8, 8)
    bad[1, 0, 2, 2] = float("nan")  # min/max skip NaN: it would have become pixel 0
    with pytest.raises(DataError, match="float images hold NaN or Inf"):
        as_split((bad, labels))
    with pytest.raises(DataError, match=r"must hold values in \[0, 1\]"):
        as_split((torch.rand(4, 3, 8, 8) * 255, labels))
