"""The training engine: any registered model, whole data set in memory, batched on-device augmentation.

What it does, top to bottom:
  1. load the split(s) once as uint8 tensors (on the training device);
  2. each step gathers a batch by index, crops/flips it on the device, normalises it to float, and runs
     forward/backward under autocast (bf16 on CPUs with bf16 units and on recent GPUs), channels_last;
  3. each epoch ends with an evaluation, the notebook's line, a row in metrics.csv/jsonl, best/last weights
     and an atomic checkpoint;
  4. every random draw derives from (seed, epoch, step), so a run stopped anywhere (SIGINT/SIGTERM save a
     checkpoint first) and resumed ends with the same weights, bit for bit on CPU, as one never stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .._factory import create
from .._version import __version__
from ..data import (
    Augment,
    Split,
    alternating_flip_mask,
    load_cifar,
    load_folder_splits,
    normalize,
    tta_logits_per_level,
)
from ..errors import CheckpointError, NonFiniteLossError
from ..registry import model_info
from ..weights import save_weights
from .checkpoint import load_checkpoint, save_checkpoint
from .config import CHOICES, RESUME_OVERRIDES, TrainConfig
from .device import apply_training_precision_policy, autocast, resolve_device, resolve_precision, tune_malloc
from .distill import distillation_loss, load_teacher
from .distributed import DistContext, convert_sync_batchnorm, init_distributed
from .lookahead import Lookahead
from .metrics import MetricsLog, accuracy_counts
from .plots import plot_curves

__all__ = ["NonFiniteLossError", "Trainer", "evaluate", "load_data"]

DATA_NOTE = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


# ------------------------------------------------------------------------------------------------- data
def load_data(cfg: TrainConfig, input_size: tuple[int, int] = (32, 32)) -> tuple[Split, Split | None, Split | None]:
    """(train, val, test) splits for ``cfg``: val is carved from train by a seeded permutation."""
    if cfg.dataset.startswith("folder:"):
        train, test = load_folder_splits(cfg.dataset[len("folder:") :], input_size)
    else:
        train = load_cifar(cfg.dataset, "train", cfg.data_dir, download=cfg.download)
        test = load_cifar(cfg.dataset, "test", cfg.data_dir, download=cfg.download)
    val = None
    if cfg.val_split:
        if not 0 < cfg.val_split < len(train):
            raise ValueError(f"--val-split must be between 1 and {len(train) - 1}, got {cfg.val_split}")
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
        val_idx, train_idx = order[: cfg.val_split].sort().values, order[cfg.val_split :].sort().values
        val = Split(train.images[val_idx], train.labels[val_idx], train.classes)
        train = Split(train.images[train_idx], train.labels[train_idx], train.classes)
    if cfg.limit_train:
        train = Split(train.images[: cfg.limit_train], train.labels[: cfg.limit_train], train.classes)
    if cfg.limit_test and test is not None:
        test = Split(test.images[: cfg.limit_test], test.labels[: cfg.limit_test], test.classes)
    return train, val, test


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = 1000,
    channels_last: bool = True,
    tta: int = 0,
    num_classes: int | None = None,
    dist: DistContext | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Loss, top-1/top-5 (%) and the confusion matrix of ``model`` on ``split``; ``tta`` is a `tta_logits` level.

    ``by_tta`` holds loss/top-1/top-5 of every level from 0 to ``tta`` (index = level): a level's forward passes
    include the lower levels', so they come free. Under torchrun each rank evaluates every ``world_size``-th image
    and the sums are all-reduced, so every image counts exactly once (no padding).
    """
    dist = dist or DistContext()
    tta = int(tta)
    was_training = model.training
    model.eval()
    n_classes = num_classes or int(split.labels.max()) + 1
    images, labels = split.images, split.labels
    if dist.enabled:
        images, labels = images[dist.rank :: dist.world_size], labels[dist.rank :: dist.world_size]
    sums = torch.zeros(tta + 1, 4, dtype=torch.float64)  # per level: loss sum, top-1 and top-5 counts, images
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    for start in tqdm(
        range(0, len(labels), batch_size), desc="evaluate", unit="batch", disable=not progress, leave=False
    ):
        x = images[start : start + batch_size].to(device, non_blocking=True)
        y = labels[start : start + batch_size].to(device, non_blocking=True)
        x = normalize(x, mean, std, channels_last)
        with autocast(device, amp_dtype):
            per_level = tta_logits_per_level(model, x, tta)
        for level, logits in enumerate(per_level):
            loss = float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            sums[level] += torch.tensor([loss, *accuracy_counts(logits, y), len(y)], dtype=torch.float64)
        pred = per_level[tta].argmax(1)
        confusion += torch.bincount((y * n_classes + pred).cpu(), minlength=n_classes**2).view(n_classes, n_classes)
    model.train(was_training)
    sums = dist.all_reduce(sums.to(device)).cpu()
    n = int(sums[0, 3])
    confusion = dist.all_reduce(confusion.to(device)).cpu()
    by_tta = [
        {"tta": level, "loss": loss / n, "top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n}
        for level, (loss, top1, top5, _) in enumerate(sums.tolist())
    ]
    return {**{k: by_tta[tta][k] for k in ("loss", "top1", "top5")}, "n": n, "confusion": confusion, "by_tta": by_tta}


# ------------------------------------------------------------------------------------------------- helpers
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)  # BN, SyncBN, IN, GN, LN, LayerNorm2d


def norm_parameters(model: nn.Module, *, weights_only: bool = False) -> list[nn.Parameter]:
    """The affine parameters of every normalization layer (only their scales with ``weights_only``)."""
    out = []
    for m in model.modules():
        if isinstance(m, NORM_TYPES):
            out += [p for name, p in m.named_parameters(recurse=False) if not weights_only or name == "weight"]
    return out


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Trainable parameters grouped by (norm layer with ``norm_lr_scale``?, weight decay?), in model order.

    With ``decoupled_wd`` a group's decay is divided by its learning rate, so that every group decays by
    ``weight_decay`` times the schedule's factor per step, whatever its learning rate (airbench's convention).
    """
    norm_ids = {id(p) for p in norm_parameters(model)} if cfg.norm_lr_scale != 1.0 else set()
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            decays = not (cfg.no_decay_norm_bias and p.ndim <= 1)
            buckets.setdefault((id(p) in norm_ids, decays), []).append(p)
    groups = []
    for (scaled, decays), params in buckets.items():
        lr = cfg.lr * (cfg.norm_lr_scale if scaled else 1.0)
        wd = cfg.weight_decay if decays else 0.0
        groups.append({"params": params, "lr": lr, "weight_decay": wd / lr if cfg.decoupled_wd and wd else wd})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (nesterov optional), Adam or AdamW over the `param_groups` of ``model``."""
    groups = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"optimizer must be one of {', '.join(CHOICES['optimizer'])}, got {cfg.optimizer!r}")


def build_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule from torch.optim.lr_scheduler, with an optional linear warmup."""
    sched = torch.optim.lr_scheduler
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "onecycle" and total >= 3:
        # OneCycleLR needs at least 2 steps up and 1 down (it divides by each phase's length)
        pct = min(max(warmup / total if warmup else 0.25, 2 / total), 1 - 1 / total)
        return sched.OneCycleLR(
            opt,
            max_lr=[group["lr"] for group in opt.param_groups],
            total_steps=total,
            pct_start=pct,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=25.0,
            final_div_factor=1e3,
        )
    if cfg.schedule == "onecycle":  # a run of 1-2 steps: nothing to cycle
        return sched.ConstantLR(opt, factor=1.0, total_iters=0)
    if cfg.schedule == "linear":  # airbench: warmup_start_factor -> 1 over the warmup, then down to final_lr_factor
        down = sched.LinearLR(opt, start_factor=1.0, end_factor=cfg.final_lr_factor, total_iters=total - warmup)
        if not warmup:
            return down
        up = sched.LinearLR(opt, start_factor=cfg.warmup_start_factor, end_factor=1.0, total_iters=warmup)
        return sched.SequentialLR(opt, [up, down], milestones=[warmup])
    if cfg.schedule == "cosine":
        main: sched.LRScheduler = sched.CosineAnnealingLR(opt, T_max=total - warmup)
    elif cfg.schedule == "step":
        main = sched.MultiStepLR(opt, milestones=[int(0.5 * total) - warmup, int(0.75 * total) - warmup], gamma=0.1)
    elif cfg.schedule == "constant":
        main = sched.ConstantLR(opt, factor=1.0, total_iters=0)
    else:
        raise ValueError(f"schedule must be one of {', '.join(CHOICES['schedule'])}, got {cfg.schedule!r}")
    if not warmup:
        return main
    ramp = sched.LinearLR(opt, start_factor=cfg.warmup_start_factor, end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(opt, [ramp, main], milestones=[warmup])


def _git_commit() -> str | None:
    """``$ZOO_GIT_COMMIT`` when set (a copy of the tree whose git metadata may be missing or stale), else HEAD."""
    if os.environ.get("ZOO_GIT_COMMIT"):
        return os.environ["ZOO_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() if out.returncode == 0 else "") or None


def machine_info(device: torch.device) -> dict[str, Any]:
    """What trained it: CPU model, threads, GPU, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "zoo": __version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_000_003 + step


# ------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Train ``cfg.model`` as ``cfg`` says; `fit` runs (or resumes) to the end and returns a summary.

    ``callbacks`` are called as ``callback(trainer, epoch, step)`` after every optimizer step.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        argv: Sequence[str] | None = None,
        callbacks: Sequence[Callable[..., None]] = (),
        recipe: str = "default",
    ) -> None:
        self.cfg = cfg.validate()  # before anything is loaded or written
        self.recipe = recipe
        self.argv = list(argv) if argv is not None else list(sys.argv)
        self.callbacks = list(callbacks)
        self._stop_reason: str | None = None
        self._session: dict[str, Any] | None = None  # this process's entry in run.json's sessions
        self._past_sessions: list[dict[str, Any]] = []  # the entries before it
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels once
        self.malloc_tuned = tune_malloc() if self.device.type == "cpu" else False
        torch.manual_seed(cfg.seed)

        info = model_info(cfg.model)
        self.train_split, self.val_split, self.test_split = load_data(cfg, info.input_size[1:])
        self.classes = self.train_split.classes
        self.model = create(cfg.model, num_classes=len(self.classes), **cfg.model_kwargs)
        self.model.pretrained_cfg["label_names"] = tuple(self.classes)
        mean = cfg.mean or self.model.pretrained_cfg["mean"]
        std = cfg.std or self.model.pretrained_cfg["std"]
        self.model.pretrained_cfg.update(mean=tuple(mean), std=tuple(std))
        self.mean = torch.tensor(mean, device=self.device)
        self.std = torch.tensor(std, device=self.device)
        if cfg.sync_bn and self.dist.enabled:
            self.model = convert_sync_batchnorm(self.model, self.device.type)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=memory_format)
        # CPU bf16: strided depthwise convs compute in fp32 (oneDNN's bf16 kernel for their input gradient is slow)
        self.fp32_convs = apply_training_precision_policy(self.model, self.device, self.amp_dtype)
        self.teacher = (
            load_teacher(
                cfg.teacher,
                num_classes=len(self.classes),
                student_mean=self.mean,
                student_std=self.std,
                device=self.device,
                memory_format=memory_format,
            )
            if cfg.teacher
            else None
        )
        self.train_images = self.train_split.images.to(self.device)
        self.train_labels = self.train_split.labels.to(self.device)
        self._prepare_parameters()

        if len(self.train_split) < cfg.batch_size:
            raise ValueError(f"batch size {cfg.batch_size} is larger than the {len(self.train_split)} training images")
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"--batch-size is the global batch: {cfg.batch_size} must divide by the "
                f"{self.dist.world_size} processes"
            )
        self.steps_per_epoch = len(self.train_split) // cfg.batch_size  # drop the last partial batch
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
            if cfg.ema
            else None
        )
        self.lookahead = (
            Lookahead(
                self.model, cfg.epochs * self.steps_per_epoch, every=cfg.lookahead_every, base_decay=cfg.lookahead_decay
            )
            if cfg.lookahead
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.augment = Augment(crop=cfg.crop, crop_mode=cfg.crop_mode, flip=cfg.flip, cutout=cfg.cutout)
        self.forward: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.forward = torch.compile(self.forward)

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.partial: dict[str, float] = {"loss": 0.0, "correct": 0.0, "time": 0.0}  # of the current epoch
        self.best: dict[str, Any] = {"acc": -1.0, "epoch": None}
        self.train_time = 0.0
        name = self.dist.broadcast(cfg.run_name or f"{cfg.model}-{dt.datetime.now():%Y%m%d-%H%M%S}")
        self.run_dir = Path(run_dir) if run_dir is not None else Path(cfg.out) / name
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsLog(self.run_dir if self.dist.is_main else None)

    def _prepare_parameters(self) -> None:
        """Before the optimizer sees them: frozen norm scales, data-dependent init; check the other options."""
        cfg, model = self.cfg, self.model
        if cfg.freeze_norm_scale:
            scales = norm_parameters(model, weights_only=True)
            if any(bool((p == 0).any()) for p in scales):
                warnings.warn(
                    f"freeze_norm_scale: {cfg.model} has norm scales initialised to zero (zero_init_last); "
                    "frozen, those residual branches stay off. Build it with zero_init_last=False.",
                    stacklevel=3,
                )
            for p in scales:
                p.requires_grad_(False)
        if cfg.data_init:
            if not callable(getattr(model, "init_from_data", None)):
                raise ValueError(f"data_init: {cfg.model} has no init_from_data(images) method to call")
            images = self.train_images[: cfg.data_init]
            model.init_from_data(normalize(images, self.mean, self.std, channels_last=False))
        if cfg.freeze_stem_epochs is not None:
            if not isinstance(getattr(model, "stem", None), nn.Module):
                raise ValueError(f"freeze_stem_epochs: {cfg.model} has no 'stem' module")
            if self.dist.enabled:
                raise ValueError("freeze_stem_epochs is not supported under torchrun (DDP needs a fixed parameter set)")

    def _apply_schedule_freezes(self, epoch: int) -> None:
        if self.cfg.freeze_stem_epochs is not None and epoch >= self.cfg.freeze_stem_epochs:
            for p in self.model.stem.parameters():
                p.requires_grad_(False)

    # -------------------------------------------------------------------------------------------- resume
    @classmethod
    def resume(
        cls, run_dir: str | os.PathLike[str], *, overrides: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Trainer:
        """Rebuild a trainer from ``run_dir/run.json`` and restore ``run_dir/checkpoint.safetensors``.

        ``overrides`` may change the fields in `RESUME_OVERRIDES` (device, data folder, ...) for this process,
        e.g. on another machine; what the run trains stays as run.json has it.
        """
        run_dir = Path(run_dir)
        overrides = dict(overrides or {})
        fixed = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if fixed:
            raise ValueError(
                f"a resumed run keeps the configuration in its run.json: {', '.join(fixed)} cannot change (only "
                f"{', '.join(RESUME_OVERRIDES)} can); start a new run to change them"
            )
        run_json, ckpt = run_dir / "run.json", run_dir / "checkpoint.safetensors"
        if not run_json.is_file() or not ckpt.is_file():
            raise FileNotFoundError(f"cannot resume from {run_dir}: expected run.json and checkpoint.safetensors there")
        meta = json.loads(run_json.read_text())
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{**{k: v for k, v in meta["config"].items() if k in fields}, **overrides})
        for key in ("mean", "std"):
            if getattr(cfg, key) is not None:
                setattr(cfg, key, tuple(getattr(cfg, key)))
        trainer = cls(cfg, run_dir=run_dir, recipe=meta.get("recipe", "default"), **kwargs)
        trainer.load_state(load_checkpoint(ckpt))
        return trainer

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the run is."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "lookahead": self.lookahead.state_dict() if self.lookahead is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "partial": dict(self.partial),
            "best": dict(self.best),
            "train_time": self.train_time,
            "metrics": list(self.metrics.rows),
            "teacher_sha256": self.teacher.sha256 if self.teacher is not None else None,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        saved, now = state.get("teacher_sha256"), self.teacher.sha256 if self.teacher is not None else None
        if saved != now:
            raise CheckpointError(
                f"the checkpoint was trained with a teacher whose weights have sha256 {saved}; --teacher "
                f"{self.cfg.teacher!r} now has {now}: resume with the same teacher weights"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        if self.lookahead is not None and state.get("lookahead") is not None:
            self.lookahead.load_state_dict(state["lookahead"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.partial = state["global_step"], dict(state["partial"])
        self.best, self.train_time = dict(state["best"]), state["train_time"]
        self.metrics = MetricsLog(self.run_dir if self.dist.is_main else None, state["metrics"])

    def save_checkpoint(self) -> None:
        """Write the checkpoint (rank 0) after averaging BN statistics over ranks (all ranks call this)."""
        self._sync_bn_statistics()
        if self.dist.is_main:
            save_checkpoint(self.run_dir / "checkpoint.safetensors", self.state())
        self.dist.barrier()

    def _sync_bn_statistics(self) -> None:
        """Without SyncBatchNorm each rank's running statistics saw only its shard: use their average."""
        self.dist.average_bn_statistics(self.model)
        if self.ema is not None:
            self.dist.average_bn_statistics(self.ema.module)

    # -------------------------------------------------------------------------------------------- run
    def request_stop(self, reason: str = "stop requested") -> None:
        """Finish the current step, checkpoint, and return from `fit` (what SIGINT/SIGTERM do)."""
        self._stop_reason = reason

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def evaluate(self, split: Split, tta: int = 0) -> dict[str, Any]:
        """Evaluate the current (EMA, if enabled) model on ``split``."""
        return evaluate(
            self.eval_model,
            split,
            mean=self.mean,
            std=self.std,
            device=self.device,
            amp_dtype=self.amp_dtype,
            batch_size=self.cfg.eval_batch_size,
            channels_last=self.cfg.channels_last,
            tta=tta,
            num_classes=len(self.classes),
            dist=self.dist,
        )

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)

    def _write_run_json(self, **extra: Any) -> None:
        if not self.dist.is_main:
            return
        path = self.run_dir / "run.json"
        meta = (
            json.loads(path.read_text()) if path.is_file() else {**self._session_record(), "config": self.cfg.to_dict()}
        )
        meta.setdefault("recipe", self.recipe)
        meta.update(extra)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
        os.replace(tmp, path)

    def _session_record(self) -> dict[str, Any]:
        """Who runs this process: command, commit, machine (run.json's top level holds the first session's)."""
        return {
            "argv": self.argv,
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "machine": machine_info(self.device),
            "precision": str(self.amp_dtype or torch.float32).replace("torch.", ""),
            "fp32_convs": self.fp32_convs,
            "malloc_tuned": self.malloc_tuned,
            "world_size": self.dist.world_size,
        }

    def _position(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "train_time_s": round(self.train_time, 1),
        }

    def _begin_session(self) -> None:
        """Append this process to run.json's ``sessions``: a run resumed elsewhere records every machine it ran on.

        A run folder written before sessions were recorded gets one entry built from run.json's top level
        (the first session), marked ``legacy``: resumes between that one and this one are not listed.
        """
        if not self.dist.is_main:
            return
        path = self.run_dir / "run.json"
        meta = json.loads(path.read_text()) if path.is_file() else {}
        past = meta.get("sessions")
        if past is None:
            past = []
            if meta and self.global_step:
                first = {k: meta.get(k) for k in ("argv", "started", "git_commit", "machine", "precision")}
                zero = {"epoch": 0, "step": 0, "global_step": 0, "steps_per_epoch": self.steps_per_epoch}
                past.append({**first, "from": {**zero, "train_time_s": 0.0}, "to": self._position(), "legacy": True})
        self._past_sessions = past
        self._session = {**self._session_record(), "from": self._position()}
        self._write_run_json(sessions=self._sessions())

    def _changes_since_last_session(self) -> list[str]:
        """What this session changed, against the one before it, of what decides the floats."""
        if not self._past_sessions or self._session is None:
            return []
        last, now = self._past_sessions[-1], self._session
        machine = ("cpu", "threads", "device", "torch")
        pairs = [(key, last.get("machine", {}).get(key), now["machine"][key]) for key in machine]
        pairs += [(key, last.get(key), now[key]) for key in ("precision", "world_size")]
        return [f"{key} ({old} -> {new})" for key, old, new in pairs if old is not None and old != new]

    def _sessions(self) -> list[dict[str, Any]]:
        """The sessions so far, this one ending where the run is now (empty before `fit` began one)."""
        if self._session is None:
            return []
        return [*self._past_sessions, {**self._session, "to": self._position()}]

    def _end_session(self) -> None:
        if self.dist.is_main and self._session is not None:
            self._write_run_json(sessions=self._sessions())

    def _save_weights(self, name: str, **metrics: Any) -> None:
        model = self.eval_model
        if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
            raise NonFiniteLossError(f"refusing to write {name}: the model holds NaN/Inf")
        if not self.dist.is_main:
            return
        sessions = self._sessions()
        save_weights(
            model,
            self.run_dir / name,
            metrics=metrics,
            recipe=self.recipe,
            config=self.cfg.to_dict(),
            command=" ".join(sessions[0]["argv"] if sessions else self.argv),  # what started the run, not --resume
            seed=self.cfg.seed,
            train_time_s=round(self.train_time, 1),
            machine=machine_info(self.device),  # this session's: the one writing the file
            git_commit=_git_commit(),
            sessions=sessions,
            data=DATA_NOTE.get(self.cfg.dataset, self.cfg.dataset),
            **({"teacher_sha256": self.teacher.sha256} if self.teacher is not None else {}),
        )

    def _train_step(self, perm: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        generator = torch.Generator(device=self.device).manual_seed(_step_seed(cfg.seed, epoch, step))
        flips = None
        if cfg.flip_mode == "alternate":
            flips = alternating_flip_mask(idx, epoch, cfg.seed, len(self.train_split))
        x = self.augment(self.train_images[idx], generator, flips)  # drawn for the global batch: same on all ranks
        y = self.train_labels[idx]
        if self.dist.enabled:  # this rank's share of the global batch
            x, y = x[self.dist.rank :: self.dist.world_size], y[self.dist.rank :: self.dist.world_size]
        x = normalize(x, self.mean, self.std, cfg.channels_last)
        with autocast(self.device, self.amp_dtype):
            logits = self.forward(x)
            teacher_logits = self.teacher(x) if self.teacher is not None else None
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
            done = self.global_step + 1
            self.lookahead.update(done)
            if done == self.lookahead.total_steps:
                self.lookahead.finish()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def _agree_on_divergence(self, diverged: bool) -> bool:
        """Under torchrun, make a divergence or a stop request on any rank hold on all (no rank may hang)."""
        if not self.dist.enabled:
            return diverged
        flags = torch.tensor([float(diverged), float(self._stop_reason is not None)], device=self.device)
        self.dist.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        if flags[1] and self._stop_reason is None:
            self._stop_reason = "stop requested on another rank"
        return bool(flags[0])

    def _train_epoch(self, epoch: int) -> bool:
        """Run (the rest of) one epoch; return False when a stop was requested before its end."""
        cfg = self.cfg
        order_seed = _step_seed(cfg.seed, epoch, -1)
        perm = torch.randperm(len(self.train_split), generator=torch.Generator().manual_seed(order_seed))
        perm = perm.to(self.device)
        check_every = 1 if self.device.type == "cpu" else 50  # a finiteness check syncs the GPU
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step_in_epoch,
            disable=not (cfg.progress and self.dist.is_main),
            leave=False,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            dynamic_ncols=True,
        )
        self.model.train()
        self._apply_schedule_freezes(epoch)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        first_step, tick = self.step_in_epoch, time.perf_counter()
        while self.step_in_epoch < self.steps_per_epoch and self._stop_reason is None:
            step = self.step_in_epoch
            loss, hits = self._train_step(perm, epoch, step)
            loss_sum += loss
            correct += hits
            self.step_in_epoch += 1
            self.global_step += 1
            for callback in self.callbacks:
                callback(self, epoch, step)
            if self._agree_on_divergence(self.step_in_epoch % check_every == 0 and not torch.isfinite(loss)):
                bar.close()
                raise NonFiniteLossError(
                    f"loss became {float(loss)} at epoch {epoch + 1}, step {step + 1}; "
                    "no weights were written from this point: lower --lr or set --grad-clip"
                )
            if not bar.disable and self.step_in_epoch % 10 == 0:
                rate = (self.step_in_epoch - first_step) * cfg.batch_size / (time.perf_counter() - tick)
                bar.set_postfix(loss=f"{float(loss):.3f}", img_s=f"{rate:.0f}")
            bar.update(1)
        bar.close()
        sums = self.dist.all_reduce(torch.stack([loss_sum.float() / self.dist.world_size, correct.float()]))
        loss_sum, correct = sums[0], sums[1]
        if not torch.isfinite(loss_sum):
            raise NonFiniteLossError(
                f"loss became non-finite during epoch {epoch + 1}; no weights were written "
                "from this point: lower --lr or set --grad-clip"
            )
        self.partial["loss"] += float(loss_sum) * cfg.batch_size
        self.partial["correct"] += float(correct)
        self.partial["time"] += time.perf_counter() - tick
        return self.step_in_epoch == self.steps_per_epoch

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: self.request_stop(signal.Signals(signum).name))
        return previous

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (from wherever the run is), evaluate on the test split, write weights."""
        cfg = self.cfg
        eval_split = self.val_split if self.val_split is not None else self.test_split
        eval_name = "val" if self.val_split is not None else "test"
        if eval_split is None:
            raise ValueError("no evaluation split: give --val-split N or a folder with train/ and val/ sub-folders")
        self._write_run_json()
        self._begin_session()
        precision = str(self.amp_dtype or torch.float32).replace("torch.", "")
        if self.fp32_convs:
            precision += f" ({self.fp32_convs} strided depthwise convs in fp32)"
        parts = [
            f"zoo.train: {cfg.model} on {cfg.dataset} ({len(self.train_split)} train, {len(eval_split)} {eval_name})",
            f"device {self.device}" + (f" x {self.dist.world_size} processes" if self.dist.enabled else ""),
            f"precision {precision}",
        ]
        if self.teacher is not None:
            parts.append(f"teacher {cfg.teacher} (weight {cfg.distill_weight}, T {cfg.distill_temperature})")
        self._log(" | ".join([*parts, f"run {self.run_dir}"]))
        changed = self._changes_since_last_session()
        if changed:
            self._log(
                f"zoo.train: resumed with a different {', '.join(changed)}: the run continues, but not bit for bit "
                "as it would have uninterrupted"
            )
        previous = self._install_signal_handlers()
        try:
            while self.epoch < cfg.epochs:
                tick = time.perf_counter()
                finished = self._train_epoch(self.epoch)
                self.train_time += time.perf_counter() - tick
                if not finished:
                    self.save_checkpoint()
                    self._log(
                        f"zoo.train: {self._stop_reason}: checkpoint saved at epoch {self.epoch + 1}, step "
                        f"{self.step_in_epoch}; continue with --resume {self.run_dir}"
                    )
                    return {"status": "interrupted", "run_dir": str(self.run_dir), "epoch": self.epoch}
                self._end_epoch(eval_split, eval_name)
                self._agree_on_divergence(False)  # a signal that arrived during evaluation, on any rank
                if self._stop_reason is not None and self.epoch < cfg.epochs:
                    self.save_checkpoint()
                    self._log(
                        f"zoo.train: {self._stop_reason}: checkpoint saved after epoch {self.epoch}; continue "
                        f"with --resume {self.run_dir}"
                    )
                    return {"status": "interrupted", "run_dir": str(self.run_dir), "epoch": self.epoch}
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._end_session()  # also when training raised: run.json says how far this session got
        return self._finish(eval_name)

    def _end_epoch(self, eval_split: Split, eval_name: str) -> None:
        cfg, p = self.cfg, self.partial
        seen = self.steps_per_epoch * cfg.batch_size
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
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_time_s": p["time"],
            "images_per_s": seen / max(p["time"], 1e-9),
        }
        self.metrics.append(row)
        self._log(
            f"Epoch [{row['epoch']}/{cfg.epochs}], Training Loss: {row['train_loss']:.4f}, Validation Loss: "
            f"{row['eval_loss']:.4f}, Validation Accuracy: {row['eval_acc']:.2f}%  ({row['images_per_s']:.0f} img/s)"
        )
        self.epoch += 1
        self.step_in_epoch = 0
        self.partial = {"loss": 0.0, "correct": 0.0, "time": 0.0}
        if result["top1"] > self.best["acc"]:
            self.best = {"acc": result["top1"], "epoch": self.epoch}
            self._save_weights(
                "best.safetensors",
                **{f"{eval_name}_top1": result["top1"], "epoch": self.epoch, "selected_on": eval_name},
            )
        if self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs:
            self.save_checkpoint()
        if self.dist.is_main and cfg.plot:
            plot_curves(self.metrics.rows, self.run_dir / "curves.png", title=f"{cfg.model} on {cfg.dataset}")

    def _finish(self, eval_name: str) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "status": "finished",
            "run_dir": str(self.run_dir),
            "epochs": self.cfg.epochs,
            "train_time_s": round(self.train_time, 1),
        }
        if self.val_split is not None:
            summary["val_top1"] = self.metrics.rows[-1]["eval_acc"]
        if self.test_split is not None:
            test = self.evaluate(self.test_split, tta=int(self.cfg.tta))  # by_tta[0]: the same passes, no TTA
            plain = test["by_tta"][0]
            summary.update(test_top1=plain["top1"], test_top5=plain["top5"], test_loss=plain["loss"])
            if self.cfg.tta:
                summary.update(test_top1_tta=test["top1"], tta_level=int(self.cfg.tta))
        metrics = {k: v for k, v in summary.items() if k.startswith(("test_", "val_"))}
        self._save_weights("last.safetensors", epoch=self.epoch, **metrics)
        summary["best"] = dict(self.best, selected_on=eval_name)
        self._write_run_json(result=summary, finished=dt.datetime.now().isoformat(timespec="seconds"))
        if self.test_split is not None:
            self._log(
                f"Test ({len(self.test_split)} images): top-1 {summary['test_top1']:.2f}%, top-5 "
                f"{summary['test_top5']:.2f}%, loss {summary['test_loss']:.4f} | training time "
                f"{self.train_time:.0f} s | weights {self.run_dir / 'last.safetensors'}"
            )
        return summary
