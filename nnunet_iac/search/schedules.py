"""Learning-rate schedules driven like nnU-Net's PolyLRScheduler: nnU-Net calls ``step(epoch)`` at the start
of every epoch. Each sets every parameter group to ``min_lr + (group's initial lr - min_lr) * shape(t / T)``,
so groups with different learning rates (cells and an unfrozen base) keep their ratio.

Search schedules (``nnUNet_IAC_search_schedule``) for the cell weights:

- ``cosine`` (default): cosine annealing, PC-DARTS' schedule, ``shape = (1 + cos(pi p)) / 2``.
- ``cosine_power``: the schedule the IAC paper names (4.2.2, "cosine power annealing ... as described in
  [44]", sharpDARTS, Hundt et al. 2019): ``shape = (b^c - 1) / (b - 1)`` with ``c`` the cosine shape above
  and base ``b`` = ``COSINE_POWER_BASE``; ``b -> 1`` is cosine annealing, a large ``b`` decays nearly
  exponentially at first. The IAC paper gives no base; 10 is sharpDARTS' own default.

The paper does not say whether its schedule also anneals alpha/beta (it calls their Adam's 1e-3 a "starting"
learning rate); here their Adam keeps a constant learning rate, as in PC-DARTS.
"""
from __future__ import annotations

import math

from torch.optim.lr_scheduler import _LRScheduler

SEARCH_SCHEDULES = ("cosine", "cosine_power")
COSINE_POWER_BASE = 10.0
POLY_EXPONENT = 0.9


class EpochLRScheduler(_LRScheduler):
    """Base class: ``shape(progress)`` goes from 1 at progress 0 to 0 at progress 1 (epoch ``max_steps``)."""

    def __init__(self, optimizer, max_steps: int, min_lr: float = 0.0, current_step: int = None):
        self.optimizer = optimizer
        self.min_lr = min_lr
        self.max_steps = max(1, max_steps)
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1)

    def shape(self, progress: float) -> float:
        raise NotImplementedError

    def step(self, current_step=None):
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        factor = self.shape(min(current_step, self.max_steps) / self.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self.min_lr + (group["initial_lr"] - self.min_lr) * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class ConstantLRScheduler(EpochLRScheduler):
    """No schedule (the paper's Stage III: Adam at a constant 1e-3)."""

    def shape(self, progress: float) -> float:
        return 1.0


class PolyGroupsLRScheduler(EpochLRScheduler):
    """nnU-Net's poly schedule, ``(1 - progress) ** 0.9``, applied to every group's own initial lr (nnU-Net's
    PolyLRScheduler sets every group to one lr)."""

    def shape(self, progress: float) -> float:
        return (1 - progress) ** POLY_EXPONENT


class CosineLRScheduler(EpochLRScheduler):
    """Cosine annealing from ``initial_lr`` to ``min_lr`` over ``max_steps`` epochs (PC-DARTS's schedule)."""

    def __init__(self, optimizer, initial_lr: float, max_steps: int, min_lr: float = 0.0, current_step: int = None):
        self.initial_lr = initial_lr
        for group in optimizer.param_groups:
            group["initial_lr"] = initial_lr
        super().__init__(optimizer, max_steps, min_lr, current_step)

    def shape(self, progress: float) -> float:
        return 0.5 * (1 + math.cos(math.pi * progress))


class CosinePowerLRScheduler(CosineLRScheduler):
    """Cosine power annealing (sharpDARTS): the cosine shape ``c`` mapped through ``(b^c - 1) / (b - 1)``."""

    def __init__(self, optimizer, initial_lr: float, max_steps: int, min_lr: float = 0.0, current_step: int = None,
                 base: float = COSINE_POWER_BASE):
        if not base > 1:
            raise ValueError(f"Cosine power annealing needs a base > 1 (1 is plain cosine annealing), got {base}.")
        self.base = base
        super().__init__(optimizer, initial_lr, max_steps, min_lr, current_step)

    def shape(self, progress: float) -> float:
        return (self.base ** super().shape(progress) - 1) / (self.base - 1)


def search_cell_scheduler(name: str, optimizer, initial_lr: float, epochs: int) -> CosineLRScheduler:
    """The cell weights' schedule of the search, by ``nnUNet_IAC_search_schedule`` name."""
    schedules = {"cosine": CosineLRScheduler, "cosine_power": CosinePowerLRScheduler}
    if name not in schedules:
        raise ValueError(f"Unknown search schedule {name!r}; use one of {', '.join(SEARCH_SCHEDULES)}.")
    return schedules[name](optimizer, initial_lr, epochs)
