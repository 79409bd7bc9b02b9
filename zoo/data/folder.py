"""ImageFolder-style data sets (``root/<class>/<image>``) decoded once into a uint8 tensor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, DatasetNotFoundError
from .cifar import Split

__all__ = ["IMAGE_EXTENSIONS", "load_folder", "load_folder_splits", "read_image"]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_image(path: str | os.PathLike[str], size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """An image file as uint8 ``(channels, H, W)``, resized (bilinear) to ``size``; a `DataError` names the file.

    16-bit greyscale (PNG ``I;16``) is scaled down by its bit depth; Pillow's own conversion would clip it at 255
    and turn every mid-grey white. A float image (TIFF, Pillow mode ``F``) is an error: its range is unknown.
    A camera's EXIF orientation is applied, so a photo is read the way it is shown.
    Pillow's decompression-bomb limit stays on: such a file is an error.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode == "F":  # Pillow would clip to 0..255 and truncate: a 0..1 image would read as black
                raise DataError(f"{path}: a 32-bit float image has no fixed range; expected 8- or 16-bit pixels")
            if im.mode.startswith("I;16") or im.mode == "I":
                im = Image.fromarray((np.asarray(im).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8), "L")
            im = im.convert("RGB" if channels == 3 else "L").resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return np.ascontiguousarray(array.reshape(size[0], size[1], channels).transpose(2, 0, 1))


def load_folder(
    root: str | os.PathLike[str], size: tuple[int, int] = (32, 32), classes: tuple[str, ...] | None = None
) -> Split:
    """Every image under ``root/<class>/`` resized to ``size`` (H, W) with PIL, once, as RGB uint8."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder not found: {root}")
    classes = classes or tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    if not classes:
        raise DatasetNotFoundError(f"{root} has no class sub-folders; expected {root}/<class>/<image>.png")
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = root / cls
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
        for path in files:
            images.append(read_image(path, size))
            labels.append(label)
    if not images:
        raise DatasetNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found under {root}")
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), classes)


def load_folder_splits(root: str | os.PathLike[str], size: tuple[int, int] = (32, 32)) -> tuple[Split, Split | None]:
    """``root/train`` + ``root/val`` (or ``root/test``) when present, else all of ``root`` as training data."""
    root = Path(root)
    if (root / "train").is_dir():
        train = load_folder(root / "train", size)
        for name in ("val", "test"):
            if (root / name).is_dir():
                return train, load_folder(root / name, size, classes=train.classes)
        return train, None
    return load_folder(root, size), None
