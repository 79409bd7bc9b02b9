"""Hooks: a Callback sees every step and epoch; a new augmentation op is one function and a registration."""

import pytest
import torch
from runs import tiny_cfg

from zoo.data import AUGMENTATIONS, register_augmentation
from zoo.engine import Callback, Trainer


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append(("fit_start", trainer.global_step))

    def on_epoch_start(self, trainer, epoch):
        self.events.append(("epoch_start", epoch))

    def on_step(self, trainer, epoch, step):
        assert trainer.last_loss.ndim == 0 and torch.isfinite(trainer.last_loss)
        self.events.append(("step", epoch, step))

    def on_train_epoch_end(self, trainer, epoch):
        self.events.append(("train_epoch_end", epoch))

    def on_epoch_end(self, trainer, row):
        self.events.append(("epoch_end", row["epoch"], round(row["eval_acc"], 6)))

    def on_fit_end(self, trainer, summary):
        self.events.append(("fit_end", summary["status"]))


def test_a_callback_sees_every_step_and_epoch_in_order(cifar10_dir, tmp_path):
    recorder, plain = Recorder(), []
    trainer = Trainer(
        tiny_cfg(cifar10_dir, tmp_path, run_name="h"), callbacks=[recorder, lambda t, e, s: plain.append(s)]
    )
    summary = trainer.fit()
    steps = trainer.steps_per_epoch
    expected = [("fit_start", 0)]
    for epoch in range(2):
        expected += [("epoch_start", epoch), *[("step", epoch, s) for s in range(steps)], ("train_epoch_end", epoch)]
        expected.append(("epoch_end", epoch + 1, round(trainer.history[epoch]["eval_acc"], 6)))
    assert recorder.events == [*expected, ("fit_end", "finished")] and summary["status"] == "finished"
    assert plain == list(range(steps)) * 2  # a plain function is an on_step hook


def test_a_new_augmentation_op_trains_in_a_few_lines(cifar10_dir, tmp_path):
    seen = []

    @register_augmentation("invert_for_test")
    def invert(x, cfg, ctx):
        seen.append((ctx.epoch, len(ctx.indices)))
        coin = torch.rand(len(x), generator=ctx.generator, device=ctx.generator.device) < 0.5
        return torch.where(coin[:, None, None, None].to(x.device), 255 - x, x)

    try:
        cfg = tiny_cfg(cifar10_dir, tmp_path, run_name="aug", augment=("crop", "flip", "invert_for_test"))
        trainer = Trainer(cfg)
        assert trainer.augment.names == ("crop", "flip", "invert_for_test")
        assert trainer.fit()["status"] == "finished"
        assert len(seen) == 2 * trainer.steps_per_epoch and seen[-1] == (1, 16)
    finally:
        del AUGMENTATIONS["invert_for_test"]


def test_tensorboard_logs_what_metrics_csv_holds(cifar10_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(tiny_cfg(cifar10_dir, tmp_path, run_name="tb", logger="tensorboard", schedule="onecycle"))
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    rows = trainer.history
    for key in ("train_loss", "train_acc", "eval_loss", "eval_acc", "eval_top5", "lr", "images_per_s"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in rows], key
    assert rows[-1]["lr"] > 0  # the rate of the last step taken, not one step past the one-cycle's end
