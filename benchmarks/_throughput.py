"""Throughput of bare loops (random data, no engine): what a model costs on a device, to train and to run."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from zoo.engine.device import apply_training_precision_policy, autocast, resolve_device, resolve_precision
from zoo.engine.distill import distillation_loss
from zoo.engine.run import describe_cpu, machine_info
from zoo.fuse import fuse_bn

__all__ = [
    "bare_loop_images_per_s",
    "inference_images_per_s",
    "machine_line",
    "time_calls",
    "train_flops_per_image",
    "training_step",
]


def machine_line(device: str | torch.device = "cpu", machine: dict[str, Any] | None = None) -> str:
    """What a benchmark's numbers were measured on, for its first line: CPU (model, x86 id, the flags that
    decide which kernels run), threads, torch, and the GPU where ``device`` is one; of ``machine`` (a
    `machine_info` record the benchmark keeps) when given."""
    m = machine or machine_info(torch.device(device))
    gpu = f", {m['gpu']}" if "gpu" in m else ""
    return f"{describe_cpu(m)}, {m['threads']} threads, torch {m['torch']}{gpu}"


def train_flops_per_image(model: nn.Module, size: int = 32) -> float:
    """FLOPs of one forward + backward pass per ``size`` x ``size`` image, counted by torch.utils.flop_counter."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.randn(8, 3, size, size)).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 8


def forward_flops_per_image(model: nn.Module, size: int = 32) -> float:
    """FLOPs of one forward pass (no gradients) per ``size`` x ``size`` image, counted by torch.utils.flop_counter."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(8, 3, size, size))
    return counter.get_total_flops() / 8


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_calls(
    fn: Callable[[], object], dev: torch.device, steps: int = 5, warmup: int = 3, seconds: float = 0.0
) -> list[float]:
    """Per-call times of ``fn``: at least ``steps`` calls and at least ``seconds`` in all, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < steps or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t)
    return times


def training_step(
    model: nn.Module,
    batch_size: int,
    *,
    device: str = "auto",
    momentum: float = 0.9,
    precision: str = "auto",
    precision_policy: bool = True,
    teacher: nn.Module | None = None,
    compile: str | None = None,
) -> tuple[Callable[[], None], torch.device]:
    """One SGD step on a fixed random 32x32 batch with the engine's device, precision and channels_last policy.

    Returns the step (call it to train) and the device. ``model`` is moved there and trained in place: pass a
    fresh one. ``precision_policy=False`` leaves out `apply_training_precision_policy`. With a ``teacher`` (a
    `Teacher` on that device) each step adds the engine's distillation term (weight 0.5, T 4). ``compile``
    names a ``torch.compile`` backend ("inductor" is what ``--compile`` uses) to wrap the model (and the teacher,
    as the engine does) in: the first call compiles.
    """
    dev = resolve_device(device)
    amp = resolve_precision(precision, dev)
    model = model.to(dev, memory_format=torch.channels_last).train()
    if precision_policy:
        apply_training_precision_policy(model, dev, amp)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum, nesterov=True)
    forward = torch.compile(model, backend=compile) if compile else model
    teacher_forward = torch.compile(teacher, backend=compile) if compile and teacher is not None else teacher
    x = torch.randn(batch_size, 3, 32, 32, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), device=dev)

    def step() -> None:
        with autocast(dev, amp):
            logits = forward(x).float()
            loss = nn.functional.cross_entropy(logits, y)
            if teacher is not None:
                loss = 0.5 * loss + 0.5 * distillation_loss(logits, teacher_forward(x), 4.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, dev


def bare_loop_images_per_s(
    model: nn.Module,
    batch_size: int,
    *,
    steps: int = 8,
    warmup: int = 2,
    seconds: float = 0.0,
    device: str = "auto",
    momentum: float = 0.9,
    precision: str = "auto",
    precision_policy: bool = True,
    teacher: nn.Module | None = None,
    compile: str | None = None,
) -> float:
    """images/s of `training_step` calls: at least ``steps`` of them and at least ``seconds``, after ``warmup``.

    ``model`` is trained in place: pass a fresh one. The keywords are `training_step`'s.
    """
    step, dev = training_step(
        model,
        batch_size,
        device=device,
        momentum=momentum,
        precision=precision,
        precision_policy=precision_policy,
        teacher=teacher,
        compile=compile,
    )
    times = time_calls(step, dev, steps, warmup, seconds)
    return len(times) * batch_size / sum(times)


def inference_images_per_s(
    model: nn.Module,
    batch_size: int = 256,
    *,
    steps: int = 5,
    warmup: int = 3,
    seconds: float = 2.0,
    device: str = "auto",
    fuse: bool = True,
) -> float:
    """images/s of eval-mode forward passes on random 32x32 inputs (median batch time).

    The deployment path: BatchNorm folded into the convs (``fuse``, on a copy), channels_last, and the
    engine's autocast policy (bf16 on CPUs with bf16 units), under ``torch.inference_mode``.
    """

    dev = resolve_device(device)
    amp = resolve_precision("auto", dev)
    model = copy.deepcopy(model).eval()
    if fuse:
        model = fuse_bn(model)
    model = model.to(dev, memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, 32, 32, device=dev).to(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), autocast(dev, amp):
            model(x)

    return batch_size / statistics.median(time_calls(forward, dev, steps, warmup, seconds))
