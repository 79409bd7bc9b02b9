"""Data: official CIFAR layouts, image folders, tensors and Datasets as in-memory uint8 splits; batched augmentation."""

from .augment import (
    AUGMENTATIONS,
    Augment,
    BatchContext,
    alternating_flip_mask,
    batch_crop,
    batch_cutout,
    batch_flip,
    default_augmentations,
    normalize,
    register_augmentation,
)
from .cifar import CIFAR_DATASETS, Split, default_data_dir, find_cifar, load_cifar
from .constants import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
from .folder import load_folder, load_folder_splits, read_image
from .sources import as_split, carve, load_splits, split_indices

__all__ = [
    "AUGMENTATIONS",
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR_DATASETS",
    "Augment",
    "BatchContext",
    "Split",
    "alternating_flip_mask",
    "as_split",
    "batch_crop",
    "batch_cutout",
    "batch_flip",
    "carve",
    "default_augmentations",
    "default_data_dir",
    "find_cifar",
    "load_cifar",
    "load_folder",
    "load_folder_splits",
    "load_splits",
    "normalize",
    "read_image",
    "register_augmentation",
    "split_indices",
]
