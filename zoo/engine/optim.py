"""Optimizer, parameter groups and the learning-rate schedule, which is one pure function of the step.

`lr_factor` is the whole schedule: the learning rate of optimizer step ``step`` (0-based) is the group's peak
learning rate times ``lr_factor(step, ...)``. `build_scheduler` wraps it in ``torch.optim.lr_scheduler.LambdaLR``;
a resumed run sets the step and gets the same rate. To change a schedule, change this file.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from .config import TrainConfig
from .device import has_bf16_units, resolve_precision

__all__ = [
    "ConvMuon",
    "MuonSGD",
    "build_optimizer",
    "build_scheduler",
    "conv_filters",
    "lr_factor",
    "muon_dtype",
    "newton_schulz",
    "norm_parameters",
    "param_groups",
    "warmup_steps",
]

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)  # BN, SyncBN, IN, GN, LN, LayerNorm2d


def norm_parameters(model: nn.Module, *, weights_only: bool = False) -> list[nn.Parameter]:
    """The affine parameters of every normalization layer (only their scales with ``weights_only``)."""
    out = []
    for m in model.modules():
        if isinstance(m, NORM_TYPES):
            out += [p for name, p in m.named_parameters(recurse=False) if not weights_only or name == "weight"]
    return out


def conv_filters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable conv filter banks (4-d weights): what ``optimizer="muon"`` hands to Muon."""
    return [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]


def param_groups(model: nn.Module, cfg: TrainConfig, exclude: Sequence[nn.Parameter] = ()) -> list[dict[str, Any]]:
    """Trainable parameters (but ``exclude``) grouped by (norm layer with ``norm_lr_scale``?, weight decay?), in
    model order.

    With ``decoupled_wd`` a group's decay is divided by its learning rate, so that every group decays by
    ``weight_decay`` times the schedule's factor per step, whatever its learning rate (airbench's convention).
    """
    norm_ids = {id(p) for p in norm_parameters(model)} if cfg.norm_lr_scale != 1.0 else set()
    skip = {id(p) for p in exclude}
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad and id(p) not in skip:
            decays = cfg.decay_norm_bias or p.ndim > 1
            buckets.setdefault((id(p) in norm_ids, decays), []).append(p)
    groups = []
    for (scaled, decays), params in buckets.items():
        lr = cfg.lr * (cfg.norm_lr_scale if scaled else 1.0)
        wd = cfg.weight_decay if decays else 0.0
        groups.append({"params": params, "lr": lr, "weight_decay": wd / lr if cfg.decoupled_wd and wd else wd})
    return groups


def _matrix(t: torch.Tensor) -> torch.Tensor:
    """A (out, rest) view of a 4-d tensor, contiguous or channels_last (columns in memory order: a permutation of
    the columns, which orthogonalisation commutes with)."""
    if t.is_contiguous():
        return t.view(t.shape[0], -1)
    return t.permute(0, 2, 3, 1).view(t.shape[0], -1)  # channels_last; a view, or view() says why not


@contextlib.contextmanager
def _as_matrices(params: Sequence[torch.Tensor]) -> Iterator[None]:
    """View each (out, in, kh, kw) parameter and its gradient as the (out, in*kh*kw) matrix it applies."""
    saved = [(p.data, p.grad) for p in params]
    for p, (data, grad) in zip(params, saved):
        p.data = _matrix(data)
        if grad is not None:
            p.grad = _matrix(grad)
    try:
        yield
    finally:
        for p, (data, grad) in zip(params, saved):
            p.data = data
            if grad is not None:
                p.grad = grad


def newton_schulz(
    grad: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float, *, dtype: torch.dtype
) -> torch.Tensor:
    """torch.optim.Muon's orthogonalization (its quintic Newton-Schulz iteration, same coefficients and order of
    operations) in ``dtype``; torch's own runs in bf16, always."""
    a, b, c = coefficients
    x = grad.to(dtype)
    wide = x.T if x.size(0) > x.size(1) else x
    wide = wide / wide.norm().clamp(min=eps)
    for _ in range(steps):
        gram = wide @ wide.T
        wide = torch.addmm(wide, torch.addmm(gram, gram, gram, beta=b, alpha=c), wide, beta=a)
    return wide.T if x.size(0) > x.size(1) else wide


def muon_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of Muon's Newton-Schulz iteration for ``--muon-precision`` on ``device``: ``auto`` is bf16 (what
    torch.optim.Muon fixes) except on a CPU or GPU without bf16 units, where bf16 matmuls are emulated: on an AMD
    EPYC Zen 1 (AVX2), airbench94_net's seven filter banks take 4.1 s per step in bf16 and 0.17 s in fp32."""
    if precision == "auto":
        return torch.bfloat16 if has_bf16_units(device) else torch.float32
    return resolve_precision(precision, device) or torch.float32  # the --precision names; fp32 is None there


@contextlib.contextmanager
def _newton_schulz_in(dtype: torch.dtype) -> Iterator[None]:
    """Run torch.optim.Muon's steps with `newton_schulz` in ``dtype``: torch has no option for it, so the module's
    function is swapped for the length of the step, and only when ``dtype`` is not torch's own bf16."""
    if dtype == torch.bfloat16:
        yield
        return
    module = torch.optim._muon
    torch_ns = module._zeropower_via_newtonschulz  # an AttributeError here: torch moved it; look again
    module._zeropower_via_newtonschulz = functools.partial(newton_schulz, dtype=dtype)
    try:
        yield
    finally:
        module._zeropower_via_newtonschulz = torch_ns


class ConvMuon(torch.optim.Muon):
    """``torch.optim.Muon`` for conv filter banks: each weight is updated as its (out, in*kh*kw) matrix, the view
    airbench94_muon takes; torch's Muon itself takes 2-d parameters only. ``normalize`` rescales each bank to
    norm sqrt(out) before its step, as airbench94_muon does: with BatchNorm after it the scale is free, and fixing
    it keeps the step's relative size what the schedule says. ``ns_dtype``: the dtype of the Newton-Schulz
    iteration (`muon_dtype`)."""

    def __init__(
        self,
        params: list[nn.Parameter],
        *,
        normalize: bool = False,
        ns_dtype: torch.dtype = torch.bfloat16,
        **kwargs: Any,
    ) -> None:
        self.normalize = normalize
        self.ns_dtype = ns_dtype
        with _as_matrices(params):
            super().__init__(params, **kwargs)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        params = [p for group in self.param_groups for p in group["params"]]
        if self.normalize:
            for p in params:
                p.mul_(p.shape[0] ** 0.5 / p.norm())
        with _as_matrices(params), _newton_schulz_in(self.ns_dtype):
            return super().step(closure)


def _sgd(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


class MuonSGD(torch.optim.Optimizer):
    """Muon on the conv filters and SGD on everything else, as one optimizer: one learning-rate schedule
    (the groups are shared with the two inner optimizers), one ``state_dict``."""

    def __init__(
        self, filters: list[nn.Parameter], groups: list[dict[str, Any]], cfg: TrainConfig, device: torch.device
    ) -> None:
        self.muon = ConvMuon(
            filters,
            lr=cfg.muon_lr,
            momentum=cfg.muon_momentum,
            nesterov=True,
            weight_decay=cfg.muon_weight_decay,
            normalize=cfg.muon_normalize,
            ns_dtype=muon_dtype(cfg.muon_precision, device),
        )
        self.sgd = _sgd(groups, cfg)
        super().__init__([*self.muon.param_groups, *self.sgd.param_groups], {})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        self.sgd.step()
        return self.muon.step(closure)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "sgd": self.sgd.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.sgd.load_state_dict(state_dict["sgd"])
        self.param_groups = [*self.muon.param_groups, *self.sgd.param_groups]  # loading made new group dicts


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (nesterov optional), Adam, AdamW, or Muon on the conv filters with SGD on the rest (`MuonSGD`), over
    the `param_groups` of ``model``."""
    if cfg.optimizer == "muon":
        filters = conv_filters(model)
        return MuonSGD(filters, param_groups(model, cfg, exclude=filters), cfg, next(model.parameters()).device)
    groups = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return _sgd(groups, cfg)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def warmup_steps(cfg: TrainConfig, total: int, steps_per_epoch: int) -> int:
    return min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) as a fraction of the peak; the schedules are those of
    ``torch.optim.lr_scheduler`` the engine used before (`tests/test_optim.py` checks them step for step):

    - ``onecycle``: linear from peak / 25 up to the peak over the warmup (25% of the run without one), then down
      to peak / 25000 at the last step (``OneCycleLR``, linear annealing);
    - ``linear``: ``warmup_start_factor`` up to 1 over the warmup, then down to ``final_lr_factor`` (airbench);
    - ``cosine``, ``step`` (x0.1 at 50% and 75%), ``constant``: after a linear warmup from ``warmup_start_factor``.
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    step = min(step, total - 1)
    warmup = warmup_steps(cfg, total, steps_per_epoch)
    if cfg.schedule == "onecycle":
        if total < 3:  # OneCycleLR needs at least 2 steps up and 1 down
            return 1.0
        pct = min(max(warmup / total if warmup else 0.25, 2 / total), 1 - 1 / total)
        up_end, start = pct * total - 1, 1 / 25
        if step <= up_end:
            return start + (1 - start) * step / up_end
        return 1 + (start / 1e3 - 1) * (step - up_end) / (total - 1 - up_end)
    if warmup and step < warmup:
        start = cfg.warmup_start_factor
        return start + (1 - start) * step / warmup
    t, length = step - warmup, total - warmup
    if cfg.schedule == "linear":
        return 1 + (cfg.final_lr_factor - 1) * t / length
    if cfg.schedule == "cosine":
        return (1 + math.cos(math.pi * t / length)) / 2
    if cfg.schedule == "step":
        milestones = (int(0.5 * total) - warmup, int(0.75 * total) - warmup)
        return 0.1 ** sum(t >= m for m in milestones)
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """`lr_factor` as a ``LambdaLR``: call ``step()`` after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch))
