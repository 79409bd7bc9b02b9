"""Training curves (``curves.png``): loss and accuracy per epoch. Needs matplotlib (the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_curves"]


def plot_curves(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> bool:
    """Draw train/eval loss and eval accuracy against epoch; return False when matplotlib is missing.

    Uses a bare ``Figure`` (no pyplot), so training inside a notebook leaves its matplotlib backend alone.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    epochs = [r["epoch"] for r in rows]
    eval_name = rows[0].get("eval_split", "eval") if rows else "eval"
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train")
    ax_loss.plot(epochs, [r["eval_loss"] for r in rows], label=eval_name)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.legend(loc="upper right")  # a fixed place: "best" searches the data and costs more than the drawing
    ax_acc.plot(epochs, [r["train_acc"] for r in rows], label="train")
    ax_acc.plot(epochs, [r["eval_acc"] for r in rows], label=eval_name)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("top-1 accuracy (%)")
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9, wspace=0.22)  # tight_layout's result, fixed
    fig.savefig(path, dpi=100)
    return True
