"""The training engine. Where things live (one concern per module):

- `config`: `TrainConfig`, each knob defined once; recipes; `build_config` (one order of defaults everywhere)
- `trainer`: `fit` and `Trainer` (fit -> train_epoch -> train_step), for any nn.Module on any data
- `setup`: the data splits and the model on its device before the first step
- `optim`: parameter groups, optimizers, the learning-rate schedule as one function of the step
- `evaluate`: evaluation and test-time augmentation
- `hooks`: `Callback`, and the progress bar, epoch line and metrics files built on it
- `run`: the run folder (run.json, sessions, metrics, curves, lock); `checkpoint`: the checkpoint file format
- `device`: device, precision policy, `configure_process`; `distributed`, `distill`, `lookahead`, `select` (batch
  selection by a proxy)
"""

from ..errors import CheckpointError, NonFiniteLossError
from .checkpoint import load_checkpoint, save_checkpoint
from .config import CHOICES, RECIPES, RESUME_OVERRIDES, TrainConfig, build_config, load_config_file
from .device import (
    autocast,
    configure_process,
    cpu_supports_bf16,
    has_bf16_units,
    resolve_device,
    resolve_precision,
    tune_malloc,
)
from .distill import Teacher, distillation_loss, load_teacher
from .evaluate import evaluate, tta_logits
from .hooks import Callback
from .optim import lr_factor
from .trainer import Trainer, fit

__all__ = [
    "CHOICES",
    "RECIPES",
    "RESUME_OVERRIDES",
    "Callback",
    "CheckpointError",
    "NonFiniteLossError",
    "Teacher",
    "TrainConfig",
    "Trainer",
    "autocast",
    "build_config",
    "configure_process",
    "cpu_supports_bf16",
    "distillation_loss",
    "evaluate",
    "fit",
    "has_bf16_units",
    "load_checkpoint",
    "load_config_file",
    "load_teacher",
    "lr_factor",
    "resolve_device",
    "resolve_precision",
    "save_checkpoint",
    "tta_logits",
    "tune_malloc",
]
