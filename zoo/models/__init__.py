"""Model families; importing this package registers every built-in model."""

from ._base import ZooModel, check_input, init_weights
from .simple import ModernGAPCNN

__all__ = ["ModernGAPCNN", "ZooModel", "check_input", "init_weights"]
