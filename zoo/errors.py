"""zoo's own error types: bad input or a user's mistake, which the CLIs report as one line with exit code 2.

Each also derives from the built-in exception Python code would expect (``ValueError``, ``KeyError``,
``FileNotFoundError``, ...), so ``except ValueError`` keeps working. Anything that is not a `ZooError` is a bug
and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "DeviceError",
    "ModelKwargsError",
    "NonFiniteLossError",
    "PluginError",
    "RunDirError",
    "StorageError",
    "UnknownModelError",
    "WeightsError",
    "ZooError",
]


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


class UnknownModelError(ZooError, KeyError, ValueError):
    """A model name (or weight tag) that is not registered."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class ModelKwargsError(ZooError, TypeError, ValueError):
    """A builder keyword argument the model does not take, or a value it cannot have."""


class PluginError(ZooError, RuntimeError):
    """A plugin tried something the registry forbids (e.g. replacing a registered name)."""


class WeightsError(ZooError, ValueError):
    """A weight file that cannot be read, trusted or loaded into the model (the model is left unchanged)."""


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """The data set is neither on disk nor downloadable."""


class DataError(ZooError, ValueError):
    """Data that is there but malformed: a truncated CIFAR file, an unreadable image, mismatched labels."""


class ConfigError(ZooError, ValueError):
    """A training or command-line setting out of range, of the wrong type, or unknown."""


class DeviceError(ZooError, RuntimeError):
    """A device that was asked for by name but is not there."""


class CheckpointError(ZooError, ValueError):
    """A training checkpoint or run folder that cannot be resumed."""


class RunDirError(ZooError, OSError):
    """A run folder that is in use by another process or already holds another run."""


class StorageError(ZooError, OSError):
    """A file that cannot be written where it was asked for: a full disk, or a file where a folder should be."""


class NonFiniteLossError(ZooError, FloatingPointError):
    """The loss became NaN or Inf; no weights from that point on are written."""
