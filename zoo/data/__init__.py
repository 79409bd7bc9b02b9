"""Data: official CIFAR layouts and image folders as in-memory uint8 tensors, batched augmentation."""

from .augment import (
    Augment,
    alternating_flip_mask,
    batch_crop,
    batch_cutout,
    batch_flip,
    normalize,
    tta_logits,
    tta_logits_per_level,
)
from .cifar import CIFAR_DATASETS, DatasetNotFoundError, Split, default_data_dir, find_cifar, load_cifar
from .folder import load_folder, load_folder_splits

__all__ = [
    "CIFAR_DATASETS",
    "Augment",
    "DatasetNotFoundError",
    "Split",
    "alternating_flip_mask",
    "batch_crop",
    "batch_cutout",
    "batch_flip",
    "default_data_dir",
    "find_cifar",
    "load_cifar",
    "load_folder",
    "load_folder_splits",
    "normalize",
    "tta_logits",
    "tta_logits_per_level",
]
