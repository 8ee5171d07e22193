"""Best-epoch choice among the last epochs only, so that arms of unequal length get equally many chances.

In the benchmark's paper regime every arm predicts with its best epoch (``checkpoint_best.pth``, chosen on the
selection split). A control trains for as many batches as the IAC arm's search and retrain together, so it has
several times more epochs to be lucky on than IAC's retrain, which alone produces the IAC model (issue 37).
With a window of R, an nnU-Net trainer writes ``checkpoint_best.pth`` only from its last R epochs: every arm with
the same R has the same number of candidate epochs, whatever its length.

It works through nnU-Net's own rule (``ema > _best_ema`` saves): before a non-candidate epoch's end
``_best_ema`` is set to infinity, which no EMA beats; at the first candidate epoch it is reset, so that epoch
saves, as nnU-Net's first epoch does. The infinity survives in a latest checkpoint, so a run continued with
``--c`` inside or after the window behaves the same.
"""
from __future__ import annotations

import math

#: no window: every epoch is a candidate, as in nnU-Net
EVERY_EPOCH = 0


def is_candidate(epoch: int, num_epochs: int, window: int) -> bool:
    """Whether ``epoch`` (0-based) may become the best epoch of a run of ``num_epochs`` with ``window``."""
    return window == EVERY_EPOCH or epoch >= num_epochs - window


class BestEpochWindowMixin:
    """Put before nnU-Net's trainer among the bases; ``best_window`` (set in ``__init__``) is R, 0 for every
    epoch."""

    best_window: int = EVERY_EPOCH

    def on_epoch_end(self):
        if not is_candidate(self.current_epoch, self.num_epochs, self.best_window):
            self._best_ema = math.inf
        elif self._best_ema == math.inf:
            self._best_ema = None
        super().on_epoch_end()
