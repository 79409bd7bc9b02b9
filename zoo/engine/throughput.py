"""Training throughput of a bare loop (random data, no engine): what a model costs on a device."""

from __future__ import annotations

import time

import torch
import torch.nn as nn

from .device import autocast, resolve_device, resolve_precision

__all__ = ["bare_loop_images_per_s"]


def bare_loop_images_per_s(
    model: nn.Module, batch_size: int, *, steps: int = 8, warmup: int = 2, device: str = "auto", momentum: float = 0.9
) -> float:
    """images/s of SGD steps on random 32x32 inputs with the engine's device, autocast and channels_last policy.

    ``model`` is moved to the device and trained in place: pass a fresh one.
    """
    dev = resolve_device(device)
    amp = resolve_precision("auto", dev)
    model = model.to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum, nesterov=True)
    x = torch.randn(batch_size, 3, 32, 32, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), device=dev)

    def step() -> None:
        with autocast(dev, amp):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)
