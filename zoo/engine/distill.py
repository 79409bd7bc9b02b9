"""Knowledge distillation (Hinton et al. 2015): the student also learns a frozen teacher's softened predictions.

``loss = (1 - weight) * task_loss + weight * T**2 * KL(softmax(teacher / T) || softmax(student / T))``, the KL
averaged over the batch (the same form as timm's ``LogitDistillationTask``). The teacher sees the student's
augmented batch, re-normalised to its own mean/std when they differ, in eval mode with BatchNorm folded.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._factory import resolve_model
from ..data import split_indices
from ..errors import ConfigError, UnknownModelError, WeightsError
from ..fuse import fuse_bn

__all__ = ["Teacher", "distillation_loss", "load_teacher"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T**2 * KL(softmax(teacher / T) || softmax(student / T))``, batch mean, computed in fp32."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature**2


class Teacher(nn.Module):
    """A frozen model that maps a batch normalised with the student's mean/std to its logits.

    The teacher is a copy of ``model`` in eval mode with its BatchNorms folded into its convs; ``model`` itself
    is left as it was.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        student_mean: torch.Tensor,
        student_std: torch.Tensor,
        sha256: str | None = None,
    ) -> None:
        super().__init__()
        self.model = fuse_bn(copy.deepcopy(model).eval()).requires_grad_(False)
        self.sha256 = sha256
        self.trained_on: dict[str, Any] | None = (getattr(model, "zoo_cfg", None) or {}).get("trained_on")
        cfg = getattr(model, "pretrained_cfg", None) or {}

        def column(values: object) -> torch.Tensor:
            return torch.as_tensor(values, dtype=torch.float32).cpu().view(1, -1, 1, 1)

        s_mean, s_std = column(student_mean), column(student_std)
        mean = column(cfg["mean"]) if cfg.get("mean") is not None else s_mean
        std = column(cfg["std"]) if cfg.get("std") is not None else s_std
        # teacher input = (student input * s_std + s_mean - mean) / std, as one per-channel affine map
        self.same_norm = torch.equal(mean, s_mean) and torch.equal(std, s_std)
        self.register_buffer("scale", s_std / std, persistent=False)
        self.register_buffer("shift", (s_mean - mean) / std, persistent=False)

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)  # always eval: BatchNorm uses its running statistics, folded in

    def saw_held_out(self, *, dataset: str, n_train: int, val_split: int, seed: int) -> int | None:
        """How many of the images a run holds out (``val_split`` of ``n_train`` in ``dataset``, drawn by ``seed``)
        the teacher trained on, by its weights' record of their run; None when they do not say, or name other data.
        A student that imitates a teacher which fit those images scores too well on them."""
        if not self.trained_on or self.trained_on.get("dataset") != dataset:
            return None
        held, _ = split_indices(n_train, val_split=val_split, seed=seed)
        its = self.trained_on
        _, taught = split_indices(n_train, val_split=its["val_split"], seed=its["seed"], limit_train=its["limit_train"])
        return int(torch.isin(held, taught).sum())

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same_norm:
            x = x * self.scale + self.shift
        return self.model(x)


def load_teacher(
    spec: str,
    *,
    num_classes: int,
    student_mean: torch.Tensor,
    student_std: torch.Tensor,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Teacher:
    """The teacher named by ``spec``: a zoo ``.safetensors`` file, or ``NAME[.TAG]`` of published weights.

    Building it leaves the global random state as it was: a run draws the same numbers with or without a teacher.
    """
    try:
        with torch.random.fork_rng(devices=[]):  # the model's random init before its weights load
            model = resolve_model(spec, pretrained=True)
    except (UnknownModelError, WeightsError) as exc:
        raise ConfigError(
            f"--teacher {spec!r}: expected a zoo .safetensors file or NAME[.TAG] of published weights "
            f"(python -m zoo.list --pretrained); {exc}"
        ) from None
    if getattr(model, "num_classes", None) != num_classes:
        raise ConfigError(
            f"--teacher {spec!r} predicts {getattr(model, 'num_classes', '?')} classes; the student is trained on "
            f"{num_classes}: a teacher must share the student's label set"
        )
    teacher = Teacher(model, student_mean=student_mean, student_std=student_std, sha256=model.zoo_cfg["sha256"])
    return teacher.to(device, memory_format=memory_format)
