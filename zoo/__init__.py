"""zoo: small image-classification CNNs for CIFAR, a name away.

>>> import zoo
>>> model = zoo.create("modern_gap_cnn")
"""

__version__ = "0.1.0"

from . import deploy, layers, models
from .fuse import fuse_bn
from .registry import (
    ModelInfo,
    UnknownModelError,
    WeightSpec,
    create,
    is_model,
    list_models,
    load_plugins,
    model_info,
    register_model,
)
from .weights import WeightsError, load, load_weights, save_weights

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "WeightSpec",
    "WeightsError",
    "__version__",
    "create",
    "deploy",
    "fuse_bn",
    "is_model",
    "layers",
    "list_models",
    "load",
    "load_plugins",
    "load_weights",
    "model_info",
    "models",
    "register_model",
    "save_weights",
]
