"""airbench's lookahead: a slow copy of the weights that the fast ones are pulled back to every k steps."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Lookahead"]


class Lookahead:
    """Every ``every`` optimizer steps: ``slow = decay * slow + (1 - decay) * fast``, then ``fast = slow``.

    ``decay`` ramps in as ``base_decay**every * (step / total_steps)**3`` (airbench94): early on the weights move
    freely, late in training they are averaged over the last few hundred steps. All floating-point entries of the
    state dict take part (BatchNorm running statistics too). `finish` makes the model the slow weights.
    """

    def __init__(self, model: nn.Module, total_steps: int, *, every: int = 5, base_decay: float = 0.95) -> None:
        if every < 1 or total_steps < 1:
            raise ValueError(f"lookahead needs every >= 1 and total_steps >= 1, got {every} and {total_steps}")
        self.model, self.total_steps, self.every, self.base_decay = model, total_steps, every, base_decay
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        return self.base_decay**self.every * (step / self.total_steps) ** 3

    @torch.no_grad()
    def update(self, step: int, decay: float | None = None) -> None:
        """Call after optimizer step ``step`` (1-based); acts on every ``every``-th step or when ``decay`` is given."""
        if decay is None:
            if step % self.every:
                return
            decay = self.decay(step)
        fast = self.model.state_dict()
        for key, slow in self.slow.items():
            slow.lerp_(fast[key].to(slow.dtype), 1.0 - decay)
            fast[key].copy_(slow)

    def finish(self) -> None:
        """End of training: the model takes the slow weights."""
        self.update(self.total_steps, decay=1.0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.slow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.slow) - set(state)
        if missing:
            raise KeyError(f"lookahead state lacks {sorted(missing)[:3]}")
        for key, slow in self.slow.items():
            slow.copy_(state[key])
