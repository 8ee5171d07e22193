"""Best-epoch selection on cases nobody reports: a fixed share of the fold's training cases, held out of training.

nnU-Net keeps ``checkpoint_best.pth`` by its EMA pseudo-Dice on the fold's validation cases, the cases a
benchmark then reports: choosing the epoch there is the IAC paper's optimism (it reports validation Dice at
the best epoch on the same cases). A trainer with ``SelectionSplitMixin`` trains on the fold's training cases
minus a held-out share and validates on that share, so its best checkpoint is chosen on cases that are neither
trained on nor reported. The share is drawn from the sorted case names with a fixed seed, so every trainer
that uses the mixin (base, controls, IAC's search and retrain) holds out and selects on the same cases; the
search then splits the remaining cases into train_search and val_search as usual.
"""
from __future__ import annotations

import numpy as np

SELECTION_FRACTION = 0.2
SELECTION_SEED = 0


class SelectionSplitError(ValueError):
    """Too few training cases to hold some out for choosing the best epoch."""


def selection_split(train_keys, fraction: float = SELECTION_FRACTION,
                    seed: int = SELECTION_SEED) -> tuple[list[str], list[str]]:
    """(cases to train on, cases to choose the best epoch on): ``fraction`` of ``train_keys`` (at least one)."""
    keys = sorted(str(k) for k in train_keys)
    if len(keys) < 2:
        raise SelectionSplitError(f"Holding out cases to choose the best epoch needs at least 2 training cases in "
                                  f"the fold; it has {len(keys)}. Use a trainer without the selection split.")
    held_out = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    order = np.random.RandomState(seed).permutation(len(keys))
    selection = sorted(keys[i] for i in order[:held_out])
    return sorted(set(keys) - set(selection)), selection


class SelectionSplitMixin:
    """``do_split`` returns (training cases minus the selection share, the selection share) for a trainer of
    nnU-Net; put it first among the bases so that nnU-Net's own split is the one it divides."""

    def do_split(self):
        train_keys, _ = super().do_split()
        fit, selection = selection_split(train_keys)
        self.print_to_log_file(f"Selection split: training on {len(fit)} of the fold's {len(train_keys)} training "
                               f"cases; {len(selection)} held out to choose the best epoch (checkpoint_best.pth); "
                               f"the fold's validation cases are not used.")
        return fit, selection
