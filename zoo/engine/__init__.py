"""The training engine: config and recipes, device/precision policy, trainer, distillation, checkpoints, metrics."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import CHOICES, RECIPES, RESUME_OVERRIDES, TrainConfig, build_config, load_config_file
from .device import autocast, cpu_supports_bf16, resolve_device, resolve_precision, tune_malloc
from .distill import Teacher, distillation_loss, load_teacher
from .trainer import NonFiniteLossError, Trainer, evaluate, load_data

__all__ = [
    "CHOICES",
    "RECIPES",
    "RESUME_OVERRIDES",
    "CheckpointError",
    "NonFiniteLossError",
    "Teacher",
    "TrainConfig",
    "Trainer",
    "autocast",
    "build_config",
    "cpu_supports_bf16",
    "distillation_loss",
    "evaluate",
    "load_checkpoint",
    "load_config_file",
    "load_data",
    "load_teacher",
    "resolve_device",
    "resolve_precision",
    "save_checkpoint",
    "tune_malloc",
]
