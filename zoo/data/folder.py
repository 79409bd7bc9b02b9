"""ImageFolder-style data sets (``root/<class>/<image>``) decoded once into a uint8 tensor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .cifar import DatasetNotFoundError, Split

__all__ = ["IMAGE_EXTENSIONS", "load_folder", "load_folder_splits"]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_folder(
    root: str | os.PathLike[str], size: tuple[int, int] = (32, 32), classes: tuple[str, ...] | None = None
) -> Split:
    """Every image under ``root/<class>/`` resized to ``size`` (H, W) with PIL, once, as RGB uint8."""
    from PIL import Image

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
            with Image.open(path) as im:
                im = im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
                images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
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
