"""The training loop, for any ``nn.Module`` on any data: `fit` -> `Trainer.train_epoch` -> `Trainer.train_step`.

What it does, top to bottom:
  1. the data is loaded once as uint8 tensors on the training device (a data set name, a folder, tensors or a
     Dataset: `zoo.data.load_splits`), a validation split carved out if asked (`zoo.engine.setup`);
  2. each step gathers a batch by index, augments it on the device (`zoo.data.Augment`: crop, flip, cutout, ...),
     normalises it to float, keeps its hardest images by a proxy's loss if asked (`zoo.engine.select`) and runs
     forward/backward under autocast (bf16 on CPUs with bf16 units and recent GPUs), channels_last; the learning
     rate is a function of the step (`zoo.engine.optim.lr_factor`);
  3. each epoch ends with an evaluation, then the hooks (`zoo.engine.hooks`: the notebook's line, metrics.csv),
     best weights and an atomic checkpoint in the run folder (`zoo.engine.run.RunDir`);
  4. every random draw derives from (seed, epoch, step) or the run's own RNG stream, so a run stopped anywhere
     (SIGINT/SIGTERM save a checkpoint first) and resumed ends with the same weights, bit for bit on CPU.
Building a `Trainer` writes nothing and leaves the process's RNG alone; `fit` creates the run folder.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data import Augment, BatchContext, Split, normalize
from ..errors import CheckpointError, ConfigError, NonFiniteLossError
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, build_config, resumed_config
from .device import autocast, resolve_device, resolve_precision
from .distill import distillation_loss, load_teacher
from .distributed import init_distributed
from .evaluate import evaluate
from .hooks import Callback, EpochLine, MetricsFiles, ProgressBar, TensorBoard
from .lookahead import Lookahead
from .optim import MuonSGD, build_optimizer, build_scheduler, lr_factor
from .run import RunDir, machine_info, session_record
from .select import build_selector, kept_count
from .setup import RunRNG, prepare_data, prepare_model

__all__ = ["Trainer", "fit"]


DATA_NOTE = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def fit(
    model: str | nn.Module = "modern_gap_cnn",
    data: Any = None,
    *,
    recipe: str = "default",
    callbacks: Sequence[Callback | Callable[..., None]] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """Train ``model`` (a registered name or any ``nn.Module``) on ``data`` (None: ``overrides["dataset"]``,
    CIFAR-10 by default; a data set name, a folder, ``(images, labels)`` tensors, a map-style Dataset, or a dict
    with ``train`` and ``test``/``val``) with ``recipe`` and any `TrainConfig` field as a keyword. Returns the
    summary: ``status``, ``run_dir``, validation accuracy, and test accuracy where `TrainConfig.final_test` asks."""
    cfg = build_config(model if isinstance(model, str) else type(model).__name__, recipe=recipe, overrides=overrides)
    module = None if isinstance(model, str) else model
    return Trainer(cfg, model=module, data=data, callbacks=callbacks, recipe=recipe).fit()


_STATEFUL = ("model", "optimizer", "scaler", "ema", "lookahead", "selector")  # have a state_dict: in the checkpoint
_PROGRESS = ("epoch", "step_in_epoch", "global_step", "partial", "best", "train_time")  # where the run is


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_000_003 + step


class Trainer:
    """Train ``model`` (default: ``create(cfg.model)``) on ``data`` (default: ``cfg.dataset``) as ``cfg`` says.

    `fit` runs (or, after `resume`, continues) to the end and returns a summary. ``callbacks`` are `Callback`
    objects or functions ``fn(trainer, epoch, step)`` called after every step.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        model: nn.Module | None = None,
        data: Any = None,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callback | Callable[..., None]] = (),
        argv: Sequence[str] | None = None,
        recipe: str = "default",
        overwrite: bool = False,
    ) -> None:
        self.cfg = cfg = cfg.validate()  # before anything is loaded or written
        self.recipe, self.overwrite, self.argv = recipe, overwrite, list(sys.argv if argv is None else argv)
        self.device = resolve_device(cfg.device)
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        self.precision = str(self.amp_dtype or torch.float32).replace("torch.", "")  # e.g. "bfloat16"
        main = self.dist.is_main
        progress = cfg.progress and main
        self.train_split, self.val_split, self.test_split, n_train = prepare_data(
            cfg, data, world_size=self.dist.world_size, progress=progress
        )
        self.classes, self.steps_per_epoch = self.train_split.classes, len(self.train_split) // cfg.batch_size
        self.rng = RunRNG(cfg.seed, self.device)
        with self.rng.fork():  # the model's init draws from the run's own seeded stream
            prepared = prepare_model(
                cfg, model, self.train_split, device=self.device, amp_dtype=self.amp_dtype, dist=self.dist
            )
        self.model, self.mean, self.std = prepared.model, prepared.mean, prepared.std
        self.registered, self.fp32_convs = prepared.registered, prepared.fp32_convs
        layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.teacher = (
            load_teacher(
                cfg.teacher,
                num_classes=len(self.classes),
                student_mean=self.mean,
                student_std=self.std,
                device=self.device,
                memory_format=layout,
            )
            if cfg.teacher
            else None
        )
        named = cfg.dataset if data is None else str(data) if isinstance(data, str | os.PathLike) else None
        self.data_name = named or "data given from Python"  # what the log and the weights' header call it
        self.teacher_saw_val = (  # tensors or a Dataset have no name to compare with the teacher's record
            self.teacher.saw_held_out(dataset=named, n_train=n_train, val_split=cfg.val_split, seed=cfg.seed)
            if self.teacher is not None and self.val_split is not None and named is not None
            else None
        )
        self.selector = build_selector(
            cfg,
            self.train_split,
            mean=self.mean,
            std=self.std,
            steps_per_epoch=self.steps_per_epoch,
            device=self.device,
            amp_dtype=self.amp_dtype,
            dist=self.dist,
        )
        self.step_images = kept_count(cfg.batch_size, cfg.select_fraction)  # the whole batch without selection
        self.train_images = self.train_split.images.to(self.device)
        self.train_labels = self.train_split.labels.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        muon = self.optimizer.muon if isinstance(self.optimizer, MuonSGD) else None
        self.muon_precision = str(muon.ns_dtype).removeprefix("torch.") if muon else None  # e.g. "float32"
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        ema = get_ema_multi_avg_fn(cfg.ema_decay)
        self.ema = AveragedModel(self.model, multi_avg_fn=ema, use_buffers=True) if cfg.ema else None
        total = cfg.epochs * self.steps_per_epoch
        self.lookahead = (
            Lookahead(self.model, total, every=cfg.lookahead_every, base_decay=cfg.lookahead_decay)
            if cfg.lookahead
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.augment = Augment(cfg)
        self.forward: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.teacher_forward = self.teacher  # what the step calls; compiled with the model (a third of a KD step)
        if cfg.compile:
            self.forward = torch.compile(self.forward)
            if self.teacher is not None:
                self.teacher_forward = torch.compile(self.teacher)

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.partial: dict[str, float] = {"loss": 0.0, "correct": 0.0, "time": 0.0}  # of the current epoch
        self.best: dict[str, Any] = {"acc": -1.0, "epoch": None}
        self.train_time, self.history, self.last_loss = 0.0, [], torch.zeros(())
        self._stop_reason: str | None = None
        name = cfg.run_name or f"{cfg.model}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        self.run_path = Path(run_dir) if run_dir is not None else Path(cfg.out) / self.dist.broadcast(name)
        self.run: RunDir | None = None  # created by fit (or reopened by resume)
        builtin = ([ProgressBar()] if progress else []) + ([EpochLine(), MetricsFiles()] if main else [])
        builtin += [TensorBoard()] if main and cfg.logger == "tensorboard" else []
        self.callbacks: list[Callback | Callable[..., None]] = [*builtin, *callbacks]

    # ------------------------------------------------------------------------------------------------ the loop
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a normalised batch (on its hardest `step_images` with batch selection); returns its
        loss and number of correct predictions."""
        cfg = self.cfg
        if self.selector is not None:
            x, y = self.selector(x, y, self.global_step)
        with autocast(self.device, self.amp_dtype):
            logits = self.forward(x)
            teacher_logits = self.teacher_forward(x) if self.teacher_forward is not None else None
        loss = self.criterion(logits.float(), y)
        if teacher_logits is not None:
            soft = distillation_loss(logits, teacher_logits, cfg.distill_temperature)
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * soft
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.lookahead is not None:
            self.lookahead.update(self.global_step + 1)
            if self.global_step + 1 == self.lookahead.total_steps:
                self.lookahead.finish()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def batch(self, perm: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step ``step``'s batch: gathered, augmented (drawn for the global batch), this rank's share, normalised."""
        cfg = self.cfg
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        generator = torch.Generator(device=self.device).manual_seed(_step_seed(cfg.seed, epoch, step))
        x = self.augment(self.train_images[idx], BatchContext(generator, idx, epoch, cfg.seed, len(self.train_split)))
        y = self.train_labels[idx]
        if self.dist.enabled:
            x, y = x[self.dist.rank :: self.dist.world_size], y[self.dist.rank :: self.dist.world_size]
        return normalize(x, self.mean, self.std, cfg.channels_last), y

    def train_mode(self, epoch: int) -> None:
        """The model as epoch ``epoch``'s steps train it: in training mode, each submodule of ``freeze`` frozen
        from its epoch on (its norm layers still normalise by batch statistics)."""
        self.model.train()
        for name in self.cfg.frozen_at(epoch):
            self.model.get_submodule(name).requires_grad_(False)

    def train_epoch(self) -> bool:
        """Run (the rest of) epoch ``self.epoch``; return False when a stop was requested before its end."""
        cfg, epoch = self.cfg, self.epoch
        order = torch.Generator().manual_seed(_step_seed(cfg.seed, epoch, -1))
        perm = torch.randperm(len(self.train_split), generator=order).to(self.device)
        check_every = 1 if self.device.type == "cpu" else 50  # a finiteness check syncs the GPU
        self.train_mode(epoch)
        self._hook("on_epoch_start", epoch)
        loss_sum, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device, dtype=torch.long)
        tick = time.perf_counter()
        while self.step_in_epoch < self.steps_per_epoch and self._stop_reason is None:
            step = self.step_in_epoch
            self.last_loss, hits = self.train_step(*self.batch(perm, epoch, step))
            loss_sum, correct = loss_sum + self.last_loss, correct + hits
            self.step_in_epoch, self.global_step = step + 1, self.global_step + 1
            self._hook("on_step", epoch, step)
            if self._agree((step + 1) % check_every == 0 and not torch.isfinite(self.last_loss)):
                raise NonFiniteLossError(
                    f"loss became {float(self.last_loss)} at epoch {epoch + 1}, step {step + 1}; "
                    "no weights were written from this point: lower --lr or set --grad-clip"
                )
        self._hook("on_train_epoch_end", epoch)
        sums = self.dist.all_reduce(torch.stack([loss_sum.float() / self.dist.world_size, correct.float()]))
        if not torch.isfinite(sums[0]):
            raise NonFiniteLossError(
                f"loss became non-finite during epoch {epoch + 1}; no weights were written "
                "from this point: lower --lr or set --grad-clip"
            )
        self.partial["loss"] += float(sums[0]) * self.step_images
        self.partial["correct"] += float(sums[1])
        self.partial["time"] += time.perf_counter() - tick
        return self.step_in_epoch == self.steps_per_epoch

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (from wherever the run is), evaluate (see ``final_test``), write weights."""
        cfg = self.cfg
        eval_name = "val" if self.val_split is not None else "test"
        eval_split = self.val_split if self.val_split is not None else self.test_split
        if eval_split is None:
            raise ConfigError("no evaluation split: give --val-split N, or data with a test split")
        if self.run is None:
            self.run = RunDir.create(self.run_path, overwrite=self.overwrite, writer=self.dist.is_main)
            self.run.write_meta(**self._session(), recipe=self.recipe, config=cfg.to_dict())
        self.session = {**self._session(), "from": self.position()}
        self.run.write_sessions(self.session)
        self._log_start(eval_name, eval_split)
        previous = self._install_signal_handlers()
        try:
            with self.rng.fork():
                self._hook("on_fit_start")
                while self.epoch < cfg.epochs:
                    tick = time.perf_counter()
                    finished = self.train_epoch()
                    self.train_time += time.perf_counter() - tick
                    if finished:
                        self._end_epoch(eval_split, eval_name)
                        self._agree(False)  # a signal that arrived during evaluation, on any rank
                    if self._stop_reason is not None and self.epoch < cfg.epochs:
                        self.save_checkpoint()
                        at = (
                            f"after epoch {self.epoch}"
                            if finished
                            else f"at epoch {self.epoch + 1}, step {self.step_in_epoch}"
                        )
                        self.log(
                            f"zoo.train: {self._stop_reason}: checkpoint saved {at}; continue with --resume "
                            f"{self.run.path}"
                        )
                        return {"status": "interrupted", "run_dir": str(self.run.path), "epoch": self.epoch}
                summary = self._finish(eval_name)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.run.write_sessions(self._session_so_far())  # also when training raised
            self.run.release()
        self._hook("on_fit_end", summary)
        return summary

    def _end_epoch(self, eval_split: Split, eval_name: str) -> None:
        cfg, p = self.cfg, self.partial
        seen = self.steps_per_epoch * self.step_images
        self._sync_bn_statistics()
        result = self.evaluate(eval_split)
        row = {
            "epoch": self.epoch + 1,
            "train_loss": p["loss"] / seen,
            "train_acc": 100.0 * p["correct"] / seen,
            "eval_split": eval_name,
            "eval_loss": result["loss"],
            "eval_acc": result["top1"],
            "eval_top5": result["top5"],
            "lr": self.lr,
            "epoch_time_s": p["time"],
            "images_per_s": seen / max(p["time"], 1e-9),
        }
        self.history.append(row)
        self.epoch, self.step_in_epoch, self.partial = self.epoch + 1, 0, {"loss": 0.0, "correct": 0.0, "time": 0.0}
        self._hook("on_epoch_end", row)
        if result["top1"] > self.best["acc"]:
            self.best = {"acc": result["top1"], "epoch": self.epoch}
            self._save_weights(
                "best.safetensors",
                **{f"{eval_name}_top1": result["top1"], "epoch": self.epoch, "selected_on": eval_name},
            )
        if self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs:
            self.save_checkpoint()

    def _finish(self, eval_name: str) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "status": "finished",
            "run_dir": str(self.run.path),
            "epochs": self.cfg.epochs,
            "train_time_s": round(self.train_time, 1),
        }
        if self.val_split is not None:
            summary["val_top1"] = self.history[-1]["eval_acc"]
            if self.cfg.tta:  # what a TTA recipe is chosen on, without looking at the test split
                summary.update(val_top1_tta=self.evaluate(self.val_split, tta=int(self.cfg.tta))["top1"])
            if self.teacher_saw_val is not None:
                summary["teacher_saw_val"] = self.teacher_saw_val
        wanted = self.cfg.final_test if self.cfg.final_test is not None else self.val_split is None
        if final_test := wanted and self.test_split is not None:
            test = self.evaluate(self.test_split, tta=int(self.cfg.tta))  # by_tta[0]: the same passes, no TTA
            plain = test["by_tta"][0]
            summary.update(test_top1=plain["top1"], test_top5=plain["top5"], test_loss=plain["loss"])
            if self.cfg.tta:
                summary.update(test_top1_tta=test["top1"], tta_level=int(self.cfg.tta))
        metrics = {k: v for k, v in summary.items() if k.startswith(("test_", "val_"))}
        self._save_weights("last.safetensors", epoch=self.epoch, **metrics)
        summary["best"] = dict(self.best, selected_on=eval_name)
        self.run.write_meta(result=summary, finished=dt.datetime.now().isoformat(timespec="seconds"))
        if final_test:
            self.log(
                f"Test ({len(self.test_split)} images): top-1 {summary['test_top1']:.2f}%, top-5 "
                f"{summary['test_top5']:.2f}%, loss {summary['test_loss']:.4f} | training time "
                f"{self.train_time:.0f} s | weights {self.run.path / 'last.safetensors'}"
            )
        elif self.val_split is not None:
            self.log(
                f"Validation ({len(self.val_split)} images): top-1 {summary['val_top1']:.2f}% | training time "
                f"{self.train_time:.0f} s | weights {self.run.path / 'last.safetensors'} | test split not evaluated "
                "(--final-test does)"
            )
        return summary

    # ------------------------------------------------------------------------------------------------ state
    @classmethod
    def resume(cls, run_dir: str | Path, *, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Trainer:
        """Rebuild a trainer from ``run_dir/run.json`` and restore its checkpoint; pass the same ``model`` and
        ``data`` again if the run was given them from Python. ``overrides`` may change `RESUME_OVERRIDES` (device,
        data folder, ...), e.g. on another machine; what the run trains stays as run.json has it."""
        run, meta = RunDir.reopen(run_dir, writer=int(os.environ.get("RANK", "0")) == 0)
        try:
            cfg = resumed_config(meta["config"], overrides)
            trainer = cls(cfg, run_dir=run.path, recipe=meta.get("recipe", "default"), **kwargs)
            trainer.run = run
            trainer.load_state(load_checkpoint(run.path / "checkpoint.safetensors"))
        except BaseException:
            run.release()
            raise
        return trainer

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the run is (the schedule is a function of the step)."""
        state = {k: None if getattr(self, k) is None else getattr(self, k).state_dict() for k in _STATEFUL}
        state.update({k: getattr(self, k) for k in _PROGRESS}, metrics=self.history)
        state["torch_rng"], state["cuda_rng"] = self.rng.current().values()  # inside fit: the run's own stream
        state["teacher_sha256"] = self.teacher.sha256 if self.teacher is not None else None
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        saved, now = state.get("teacher_sha256"), self.teacher.sha256 if self.teacher is not None else None
        if saved != now:
            raise CheckpointError(
                f"the checkpoint was trained with a teacher whose weights have sha256 {saved}; "
                f"--teacher {self.cfg.teacher!r} now has {now}: resume with the same teacher weights"
            )
        for key in _STATEFUL:
            if getattr(self, key) is not None and state.get(key) is not None:
                getattr(self, key).load_state_dict(state[key])
        for key in _PROGRESS:
            setattr(self, key, state[key])
        self.history = list(state["metrics"])
        cuda = state["cuda_rng"]  # a list of per-device states in checkpoints before 0.2
        self.rng.state = {"cpu": state["torch_rng"], "cuda": cuda[0] if isinstance(cuda, list) and cuda else cuda}
        self.scheduler.last_epoch = self.global_step  # LambdaLR's next step() gives step global_step's rate

    def save_checkpoint(self) -> None:
        """Write the checkpoint (rank 0) after averaging BN statistics over ranks (all ranks call this), and bring
        this session's record up to it, so a process killed without a chance to clean up still leaves it true."""
        self._sync_bn_statistics()
        if self.dist.is_main:
            save_checkpoint(self.run.path / "checkpoint.safetensors", self.state())
            self.run.write_sessions(self._session_so_far())
        self.dist.barrier()

    def _save_weights(self, name: str, **metrics: Any) -> None:
        model, cfg = self.eval_model, self.cfg
        if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
            raise NonFiniteLossError(f"refusing to write {name}: the model holds NaN/Inf")
        header = {
            "recipe": self.recipe,
            "config": cfg.to_dict(),
            "seed": cfg.seed,
            "metrics": metrics,
            "train_time_s": round(self.train_time, 1),
            "machine": machine_info(self.device),
            "git_commit": self.session["git_commit"],
            "data": DATA_NOTE.get(self.data_name, self.data_name),
        }
        if self.teacher is not None:
            header["teacher_sha256"] = self.teacher.sha256
        if not self.registered:  # weights-only: the preprocessing travels in the header all the same
            header.update(mean=self.mean.tolist(), std=self.std.tolist(), label_names=list(self.classes))
        self.run.save_weights(model, name, self._session_so_far(), weights_only=not self.registered, **header)

    # ------------------------------------------------------------------------------------------------ helpers
    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group at the last step taken (the one that was applied)."""
        return self.scheduler.base_lrs[0] * lr_factor(max(self.global_step - 1, 0), self.cfg, self.steps_per_epoch)

    def evaluate(self, split: Split, tta: int = 0) -> dict[str, Any]:
        """Evaluate the current (EMA, if enabled) model on ``split``."""
        cfg = self.cfg
        return evaluate(
            self.eval_model,
            split,
            mean=self.mean,
            std=self.std,
            device=self.device,
            tta=tta,
            amp_dtype=self.amp_dtype,
            batch_size=cfg.eval_batch_size,
            channels_last=cfg.channels_last,
            num_classes=len(self.classes),
            dist=self.dist,
        )

    def request_stop(self, reason: str = "stop requested") -> None:
        """Finish the current step, checkpoint, and return from `fit` (what SIGINT/SIGTERM do)."""
        self._stop_reason = reason

    def log(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)

    def position(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "train_time_s": round(self.train_time, 1),
        }

    def _session_so_far(self) -> dict[str, Any]:
        return {**self.session, "to": self.position()}

    def _session(self) -> dict[str, Any]:
        extra = {"muon_precision": self.muon_precision} if self.muon_precision else {}
        return session_record(
            self.argv, self.device, self.precision, fp32_convs=self.fp32_convs, world_size=self.dist.world_size, **extra
        )

    def _log_start(self, eval_name: str, eval_split: Split) -> None:
        cfg, convs = self.cfg, f" ({self.fp32_convs} strided depthwise convs in fp32)" if self.fp32_convs else ""
        procs = f" x {self.dist.world_size} processes" if self.dist.enabled else ""
        parts = [
            f"zoo.train: {cfg.model} on {self.data_name} ({len(self.train_split)} train, "
            f"{len(eval_split)} {eval_name})",
            f"device {self.device}{procs}",
            f"precision {self.precision}{convs}",
        ]
        if self.muon_precision:
            parts.append(f"Muon's Newton-Schulz in {self.muon_precision}")
        if self.selector is not None:
            parts.append(f"batch selection: the hardest {self.step_images} of {cfg.batch_size} by {cfg.select_proxy}")
        if self.teacher is not None:
            parts.append(f"teacher {cfg.teacher} (weight {cfg.distill_weight}, T {cfg.distill_temperature})")
        self.log(" | ".join([*parts, f"run {self.run.path}"]))
        if self.teacher_saw_val:
            self.log(
                f"zoo.train: warning: the teacher trained on {self.teacher_saw_val} of the {len(eval_split)} images "
                "this run holds out, so its val numbers flatter distillation (the student imitates a fit of them); "
                f"a teacher trained with --val-split {cfg.val_split} --seed {cfg.seed} holds out the same images"
            )
        if not self.registered:
            self.log("zoo.train: the model is not from the registry, so its weight files are weights-only")
        if changed := self.run.changes(self.session):
            self.log(
                f"zoo.train: resumed with a different {', '.join(changed)}: the run continues, but not bit for "
                "bit as it would have uninterrupted"
            )

    def _hook(self, name: str, *args: Any) -> None:
        """Call hook ``name`` of every callback; a plain function is an ``on_step`` hook."""
        for cb in self.callbacks:
            if isinstance(cb, Callback):
                getattr(cb, name)(self, *args)
            elif name == "on_step":
                cb(self, *args)

    def _agree(self, diverged: bool) -> bool:
        """Under torchrun, make a divergence or a stop request on any rank hold on all (no rank may hang)."""
        if not self.dist.enabled:
            return diverged
        flags = torch.tensor([float(diverged), float(self._stop_reason is not None)], device=self.device)
        self.dist.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        if flags[1] and self._stop_reason is None:
            self._stop_reason = "stop requested on another rank"
        return bool(flags[0])

    def _sync_bn_statistics(self) -> None:
        """Without SyncBatchNorm each rank's running statistics saw only its shard: use their average."""
        self.dist.average_bn_statistics(self.model)
        if self.ema is not None:
            self.dist.average_bn_statistics(self.ema.module)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        stop = lambda signum, _: self.request_stop(signal.Signals(signum).name)  # noqa: E731
        return {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
