"""zoo: small image-classification CNNs for CIFAR, a name away.

>>> import zoo
>>> model = zoo.create("modern_gap_cnn")
"""

from . import deploy, layers, models
from ._factory import create, load, resolve_model
from ._version import __version__
from .errors import UnknownModelError, WeightsError, ZooError
from .fuse import fuse_bn
from .hub import push_to_hub
from .registry import ModelInfo, WeightSpec, is_model, list_models, load_plugins, model_info, register_model
from .weights import load_weights, save_weights

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "WeightSpec",
    "WeightsError",
    "ZooError",
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
    "push_to_hub",
    "register_model",
    "resolve_model",
    "save_weights",
]
