"""Learning-rate schedules for the ``scheduler/`` config group (optimizers come from ``torch.optim``).

A scheduler is stepped after every optimizer step (``interval: step``); ``total_steps`` is what Lightning
estimates for the whole run (``trainer.estimated_stepping_batches``).
"""

from __future__ import annotations

import math

import torch

DECAYS = ("none", "linear", "cosine")


class WarmupSchedule(torch.optim.lr_scheduler.LambdaLR):
    """Linear warm-up from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps`` steps, then ``decay``:
    ``none`` (constant), ``linear`` or ``cosine`` down to ``min_factor * lr`` at ``total_steps``."""

    def __init__(self, optimizer, total_steps: int, warmup_steps: int = 0, decay: str = "none",
                 min_factor: float = 0.0):
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {decay!r}")
        if not 0.0 <= min_factor <= 1.0:
            raise ValueError(f"min_factor must be in [0, 1], got {min_factor!r}")
        self.total_steps, self.warmup_steps, self.decay, self.min_factor = int(total_steps), warmup_steps, decay, min_factor
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """The multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.decay == "none":
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min(max(step - self.warmup_steps, 0) / span, 1.0)
        shape = 1.0 - progress if self.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_factor + (1.0 - self.min_factor) * shape
