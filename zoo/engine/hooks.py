"""Hooks: how Python code watches a run step by step and epoch by epoch. The engine's own progress bar, epoch line
and metrics files are hooks too.

Subclass `Callback` and override what you need; a plain function ``fn(trainer, epoch, step)`` given as a callback
is called after every optimizer step. ``trainer.last_loss`` is the step's loss (a tensor: reading it as a float
waits for the device), ``trainer.request_stop()`` ends the run at the next step with a checkpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from ..errors import ConfigError

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Callback", "EpochLine", "MetricsFiles", "ProgressBar", "TensorBoard"]


class Callback:
    """Every method is called on every rank of a torchrun job; ``trainer.dist.is_main`` tells rank 0."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step of this process (a resumed run too)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based) this process runs, also mid-epoch after a resume."""

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        """After optimizer step ``step`` (0-based, within ``epoch``)."""

    def on_train_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After the last step this process runs in ``epoch`` (the epoch's end, or a stop request)."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After an epoch's evaluation; ``row`` is its line of metrics.csv."""

    def on_fit_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """After the final test evaluation and the last weights (not called when a run is interrupted)."""


class ProgressBar(Callback):
    """A tqdm bar per epoch with the loss and images/s every 10 steps (each read syncs the device once)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        cfg = trainer.cfg
        self.bar = tqdm(
            total=trainer.steps_per_epoch,
            initial=trainer.step_in_epoch,
            leave=False,
            unit="batch",
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            dynamic_ncols=True,
        )
        self.first, self.tick = trainer.step_in_epoch, time.perf_counter()

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        if trainer.step_in_epoch % 10 == 0:
            rate = (trainer.step_in_epoch - self.first) * trainer.cfg.batch_size / (time.perf_counter() - self.tick)
            self.bar.set_postfix(loss=f"{float(trainer.last_loss):.3f}", img_s=f"{rate:.0f}")
        self.bar.update(1)

    def on_train_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self.bar.close()


class EpochLine(Callback):
    """The study notebook's line after every epoch."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        trainer.log(
            f"Epoch [{row['epoch']}/{trainer.cfg.epochs}], Training Loss: {row['train_loss']:.4f}, Validation Loss: "
            f"{row['eval_loss']:.4f}, Validation Accuracy: {row['eval_acc']:.2f}%  ({row['images_per_s']:.0f} img/s)"
        )


class MetricsFiles(Callback):
    """metrics.jsonl, metrics.csv and (with ``cfg.plot``) curves.png in the run folder, after every epoch."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        title = f"{trainer.cfg.model} on {trainer.cfg.dataset}"
        trainer.run.write_metrics(trainer.history, plot=trainer.cfg.plot, title=title)


class TensorBoard(Callback):
    """Every number of each epoch's metrics.csv row, by its column name, to ``RUN_DIR/tensorboard`` through
    ``torch.utils.tensorboard.SummaryWriter`` (``--logger tensorboard``); the step is the epoch."""

    def on_fit_start(self, trainer: Trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's module imports tensorboard
            raise ConfigError(
                "--logger tensorboard needs the tensorboard package: pip install 'zoo[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(trainer.run.path / "tensorboard"))

    def on_epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if isinstance(value, int | float) and key != "epoch":
                self.writer.add_scalar(key, value, global_step=row["epoch"])
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        self.writer.close()
