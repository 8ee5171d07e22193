"""The fold's training cases split into train_search (cell weights) and val_search (alpha/beta)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnunet_iac.common.atomic_io import atomic_write_json

SPLIT_FILE = "search_split.json"


class SearchSplitError(RuntimeError):
    """The saved search split does not belong to this fold's training cases."""


def split_search_cases(train_keys, seed: int) -> dict[str, list[str]]:
    """Deterministic halves: sort, shuffle with ``seed``, first half trains weights, second half alpha/beta."""
    keys = sorted(str(k) for k in train_keys)
    if len(keys) < 2:
        raise SearchSplitError(f"The search needs at least 2 training cases in the fold to split into "
                               f"train_search and val_search; this fold has {len(keys)}.")
    order = np.random.RandomState(seed).permutation(len(keys))
    half = len(keys) // 2
    return {"train_search": sorted(keys[i] for i in order[:half]),
            "val_search": sorted(keys[i] for i in order[half:])}


def load_or_create_split(folder: Path, train_keys, seed: int, fold) -> dict[str, list[str]]:
    """Re-use the split of an earlier (interrupted) search in ``folder``; otherwise create and save it."""
    path = Path(folder) / SPLIT_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if sorted(saved["train_search"] + saved["val_search"]) != sorted(str(k) for k in train_keys):
            raise SearchSplitError(f"{path} holds a split of other cases than the training cases of fold {fold}. "
                                   f"Move it away (or use another output folder) to start a new search.")
        return {"train_search": saved["train_search"], "val_search": saved["val_search"]}
    split = split_search_cases(train_keys, seed)
    atomic_write_json(path, {"fold": fold, "seed": seed, **split})
    return split
