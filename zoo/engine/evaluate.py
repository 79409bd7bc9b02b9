"""Evaluation: loss, top-1/top-5 and the confusion matrix of a model on a split, with test-time augmentation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data import Split, normalize
from ..errors import ConfigError
from .device import autocast
from .distributed import DistContext

__all__ = ["accuracy_counts", "evaluate", "tta_logits"]


def accuracy_counts(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of rows whose target is in the top-k logits, for each k (k capped at the class count)."""
    k_max = min(max(topk), logits.shape[1])
    hits = logits.topk(k_max, dim=1).indices.eq(target[:, None])
    return [int(hits[:, : min(k, k_max)].any(1).sum()) for k in topk]


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 0) -> list[torch.Tensor]:
    """Logits of a normalised batch at every test-time-augmentation level from 0 to ``level`` (index = level),
    from ``level``'s forward passes alone: 0 none, 1 mean with the mirror image, 2 airbench's mirror and 1-pixel
    translations (half weight on the image, a quarter on each reflect-padded diagonal shift)."""
    if level not in (0, 1, 2):
        raise ConfigError(f"TTA level must be 0, 1 or 2, got {level!r}")
    logits = [model(x).float()]
    if level >= 1:
        logits.append((logits[0] + model(x.flip(3)).float()) / 2)
    if level >= 2:
        h, w = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = [padded[:, :, :h, :w], padded[:, :, 2:, 2:]]
        shifted_logits = [(model(s).float() + model(s.flip(3)).float()) / 2 for s in shifted]
        logits.append(logits[1] / 2 + (shifted_logits[0] + shifted_logits[1]) / 4)
    return logits


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
    """Loss, top-1/top-5 (%) and the confusion matrix of ``model`` on ``split`` at TTA level ``tta``.

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
    batches = range(0, len(labels), batch_size)
    for start in tqdm(batches, desc="evaluate", unit="batch", disable=not progress, leave=False):
        x = images[start : start + batch_size].to(device, non_blocking=True)
        y = labels[start : start + batch_size].to(device, non_blocking=True)
        x = normalize(x, mean, std, channels_last)
        with autocast(device, amp_dtype):
            per_level = tta_logits(model, x, tta)
        for level, logits in enumerate(per_level):
            loss = float(F.cross_entropy(logits, y, reduction="sum"))
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
