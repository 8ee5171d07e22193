"""Dice per class from nnU-Net's own evaluation files (``summary.json`` of ``nnUNetv2_evaluate_folder`` and of a
fold's ``validation/``), so that ``select``, ``summary`` and the benchmark read one format one way."""
from __future__ import annotations

import json
from pathlib import Path


def label_names(dataset_json: dict) -> dict[str, str]:
    """nnU-Net label value (as summary.json writes it) -> name from dataset.json."""
    return {str(value): name for name, value in dataset_json.get("labels", {}).items() if isinstance(value, int)}


def read_dice(summary_file: Path, names: dict[str, str] | None = None) -> dict:
    """``{"class 1 (name)": dice, ..., "mean": foreground mean}`` of one nnU-Net summary.json."""
    names = names or {}
    data = json.loads(summary_file.read_text())
    dice = {f"class {label}" + (f" ({names[label]})" if label in names else ""): values["Dice"]
            for label, values in data["mean"].items()}
    dice["mean"] = data["foreground_mean"]["Dice"]
    return dice
