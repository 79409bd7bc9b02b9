"""Online batch selection by a proxy: a small model ranks each drawn batch by its loss and the trained model's step
sees only the hardest fraction (airbench96's data selection, Jordan 2024; the loss ranking of Selective Backprop,
Jiang et al. 2019, with the ranking model a cheap proxy as in Selection via Proxy, Coleman et al. 2020).

Every step the proxy scores the whole drawn batch (a forward pass without gradients, in training mode), the step
trains on the ``fraction`` with the highest proxy loss, and every ``every``-th step the proxy itself takes an
optimizer step on those examples, with the run's optimizer settings and learning-rate schedule, so that its ranking
keeps up with training. Nothing here draws random numbers: given the proxy's state the choice is a function of the
batch, and the proxy, its optimizer and its scaler are in the checkpoint, so a resumed run selects as it would have.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._factory import create
from ..data import Split
from ..errors import ConfigError, ModelKwargsError, UnknownModelError
from .config import TrainConfig
from .device import autocast
from .distributed import DistContext
from .optim import build_optimizer, lr_factor
from .setup import RunRNG, prepare_model

__all__ = ["ProxySelector", "build_selector", "kept_count", "proxy_kwargs"]

# airbench96's proxy: airbench94_net at half its width in the first stage and a quarter in the other two.
AIRBENCH96_PROXY = {"widths": [32, 64, 64]}


def proxy_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The proxy's builder kwargs: ``cfg.select_proxy_kwargs`` if given, else airbench96's proxy for airbench94_net
    and the builder's own defaults for any other model."""
    if cfg.select_proxy_kwargs is not None:
        return cfg.select_proxy_kwargs
    return dict(AIRBENCH96_PROXY) if cfg.select_proxy == "airbench94_net" else {}


def kept_count(batch: int, fraction: float) -> int:
    """How many of a drawn batch of ``batch`` images the step trains on (at least one)."""
    return max(1, round(batch * fraction))


class ProxySelector:
    """Pick the ``fraction`` of each batch that ``proxy`` finds hardest; train the proxy every ``every`` steps."""

    def __init__(
        self,
        proxy: nn.Module,
        cfg: TrainConfig,
        *,
        steps_per_epoch: int,
        device: torch.device,
        amp_dtype: torch.dtype | None,
    ) -> None:
        self.proxy, self.cfg, self.steps_per_epoch = proxy, cfg, steps_per_epoch
        self.device, self.amp_dtype = device, amp_dtype
        self.optimizer = build_optimizer(proxy, cfg)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples of ``(x, y)`` that global step ``step`` trains on, in the batch's order."""
        self.proxy.train()
        with torch.no_grad(), autocast(self.device, self.amp_dtype):
            logits = self.proxy(x)
        losses = F.cross_entropy(logits.float(), y, reduction="none")
        keep = losses.topk(kept_count(len(y), self.cfg.select_fraction)).indices.sort().values
        x, y = x[keep], y[keep]
        if step % self.cfg.select_every == 0:
            self.train_step(x, y, step)
        return x, y

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
        """One proxy step on ``(x, y)`` at global step ``step``'s point of the run's schedule."""
        factor = lr_factor(step, self.cfg, self.steps_per_epoch)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        with autocast(self.device, self.amp_dtype):
            loss = self.criterion(self.proxy(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.proxy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.proxy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def build_selector(
    cfg: TrainConfig,
    train: Split,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    steps_per_epoch: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    dist: DistContext,
) -> ProxySelector | None:
    """The run's selector (None when ``cfg.select_fraction`` is 1). The proxy is ``create(cfg.select_proxy,
    **proxy_kwargs(cfg))``, prepared as the trained model is (same input normalisation, precision policy,
    frozen norm scales, ``init_from_data`` if it has one), with its initial weights drawn from a stream of its own:
    the trained model starts the same with or without selection."""
    if cfg.select_fraction == 1:
        return None
    if dist.enabled:
        raise ConfigError("select_fraction < 1 is not supported under torchrun (each rank would train its own proxy)")
    try:
        with RunRNG(cfg.seed + 1, device).fork():
            proxy = create(cfg.select_proxy, num_classes=len(train.classes), **proxy_kwargs(cfg))
    except UnknownModelError as exc:
        raise ConfigError(f"select_proxy: {exc}") from None
    except ModelKwargsError as exc:
        raise ConfigError(f"select_proxy_kwargs {cfg.select_proxy_kwargs}: {exc}") from None
    data_init = cfg.data_init if callable(getattr(proxy, "init_from_data", None)) else 0
    proxy_cfg = dataclasses.replace(
        cfg,
        model=cfg.select_proxy,
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
        data_init=data_init,
        freeze={},
        sync_bn=False,
    )
    prepared = prepare_model(proxy_cfg, proxy, train, device=device, amp_dtype=amp_dtype, dist=dist)
    return ProxySelector(prepared.model, cfg, steps_per_epoch=steps_per_epoch, device=device, amp_dtype=amp_dtype)
