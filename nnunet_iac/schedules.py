"""Learning-rate schedule for the cell weights, driven like nnU-Net's PolyLRScheduler (step(epoch))."""
from __future__ import annotations

import math

from torch.optim.lr_scheduler import _LRScheduler


class CosineLRScheduler(_LRScheduler):
    """Cosine annealing from ``initial_lr`` to ``min_lr`` over ``max_steps`` epochs (PC-DARTS's schedule)."""

    def __init__(self, optimizer, initial_lr: float, max_steps: int, min_lr: float = 0.0, current_step: int = None):
        self.optimizer = optimizer
        self.initial_lr = initial_lr
        self.min_lr = min_lr
        self.max_steps = max(1, max_steps)
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1)

    def step(self, current_step=None):
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        progress = min(current_step, self.max_steps) / self.max_steps
        new_lr = self.min_lr + 0.5 * (self.initial_lr - self.min_lr) * (1 + math.cos(math.pi * progress))
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = new_lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
