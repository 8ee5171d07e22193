"""How closely an arm fitted its training cases, read from the per-epoch losses nnU-Net logs anyway.

Why: the adaptation benchmark's test Dice says which arm transfers best to unseen target cases, not why a losing
arm loses. An arm that ends with a higher training loss than the others under-fits its few cases (too little
capacity where it sits, or too few batches); one that fits them as closely and still tests lower transfers
worse. nnU-Net writes both losses (and the learning rate) to ``training_log_<date>.txt`` in every fold folder,
so the answer needs no extra training; the logs live in the run folder, which a new machine loses, so the
numbers are copied into each published support set (scripts/publish_adaptation_fold.py).

In the adaptation benchmark a fold's validation cases are its support set again, so ``val_loss`` is the fit on
the training cases without augmentation.
"""
from __future__ import annotations

import re
from pathlib import Path

# nnU-Net names a log by its start time without zero padding (training_log_2026_12_7_9_5_3.txt), so the
# order of resumed trainings' logs comes from the numbers, not from sorting the names
_LOG_NAME = re.compile(r"training_log_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)\.txt$")
# "2026-12-07 07:51:14.487227: train_loss -0.1896 " -> "train_loss -0.1896"
_MESSAGE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?: (.*?)\s*$")
_EPOCH = re.compile(r"^Epoch (\d+)$")
_NUMBER = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan)"
_VALUES = {"train_loss": re.compile(rf"^train_loss {_NUMBER}$"),
           "val_loss": re.compile(rf"^val_loss {_NUMBER}$"),
           "learning_rate": re.compile(rf"^Current learning rate: {_NUMBER}$")}


def training_logs(fold_folder: Path) -> list[Path]:
    """The fold's nnU-Net training logs, oldest first."""
    logs = [(tuple(int(n) for n in m.groups()), p) for p in fold_folder.glob("training_log_*.txt")
            if (m := _LOG_NAME.search(p.name))]
    return [p for _, p in sorted(logs)]


def _epochs_of_log(path: Path) -> dict[int, dict[str, float]]:
    epochs: dict[int, dict[str, float]] = {}
    current = None
    for line in path.read_text(errors="replace").splitlines():
        message = _MESSAGE.match(line)
        if not message:
            continue
        text = message.group(1)
        if epoch := _EPOCH.match(text):
            current = epochs.setdefault(int(epoch.group(1)), {})
            continue
        for key, pattern in _VALUES.items():
            if current is not None and (value := pattern.match(text)):
                current[key] = float(value.group(1))
    return epochs


def training_fit(fold_folder: Path) -> dict[str, list[float | None]] | None:
    """Per epoch, in order: ``train_loss``, ``val_loss``, ``learning_rate`` (None where an epoch did not log one,
    e.g. one killed before its end). An epoch logged again by a resumed training takes its latest log's values.
    None where the folder has no training log."""
    logs = training_logs(fold_folder)
    if not logs:
        return None
    epochs: dict[int, dict[str, float]] = {}
    for log in logs:
        epochs.update(_epochs_of_log(log))
    order = sorted(epochs)
    return {"epoch": order, **{key: [epochs[e].get(key) for e in order] for key in _VALUES}}
