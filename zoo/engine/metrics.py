"""Per-epoch metrics, appended to ``metrics.jsonl`` and ``metrics.csv`` in the run folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["MetricsLog", "accuracy_counts"]


def accuracy_counts(logits: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of rows whose target is in the top-k logits, for each k (k capped at the class count)."""
    k_max = min(max(topk), logits.shape[1])
    pred = logits.topk(k_max, dim=1).indices
    hits = pred.eq(target[:, None])
    return [int(hits[:, : min(k, k_max)].any(1).sum()) for k in topk]


class MetricsLog:
    """Rows of per-epoch numbers; rewritten whole on every append so the CSV header can grow and a
    resumed run keeps exactly the rows of the epochs it has finished. ``run_dir=None`` keeps rows in memory
    only (the non-zero ranks of a torchrun job)."""

    def __init__(self, run_dir: str | os.PathLike[str] | None, rows: list[dict[str, Any]] | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rows: list[dict[str, Any]] = list(rows or [])

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        if self.run_dir is None:
            return
        with open(self.run_dir / "metrics.jsonl", "w") as f:
            for row in self.rows:
                f.write(json.dumps(row) + "\n")
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        with open(self.run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
