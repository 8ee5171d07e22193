"""Per-case Dice from nnU-Net's ``summary.json``, with the two rules for empty classes a benchmark needs.

nnU-Net writes Dice NaN for a class that is absent from both the reference and the prediction (it computes
``2TP / (2TP + FP + FN)`` and has 0 / 0 there), and 0 for a class absent from the reference that the arm
predicts anyway. Its means leave the NaN out. That is right for a headline mean and wrong for a comparison of
two arms case by case: an arm that correctly predicts nothing on an empty case would lose the case (NaN, left
out) while an arm that predicts false positives there keeps it at 0, so the case that separates them vanishes
from the pair (issue 37: a paired mean of 0 where nnU-Net's own means differ by 27 points).

- ``PAIRED`` (every paired comparison): a class whose reference is empty counts 1 for an arm that predicts
  nothing of it (nnU-Net's NaN) and 0 for an arm that predicts something (nnU-Net's 0), as BraTS-style
  evaluations score empty regions. Every case keeps every class, so two arms always share their cases.
- ``NNUNET`` (the headline means, nnU-Net's ``foreground_mean``): a NaN class is left out of the case's mean
  and a case with no class left is left out.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

PAIRED = "paired"
NNUNET = "nnunet"
RULES = {
    PAIRED: "a class empty in the reference counts Dice 1 where the arm predicts nothing of it and 0 where it "
            "predicts something (BraTS-style), so every case stays in every paired comparison",
    NNUNET: "nnU-Net's own: a class empty in both reference and prediction (Dice NaN) is left out of the means",
}
SETS = ("validation", "test")


def _is_nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def class_dice(metrics: dict, rule: str = PAIRED) -> float | None:
    """One class of one case under ``rule``; None where the rule leaves it out.

    nnU-Net writes NaN exactly when true positives, false positives and false negatives are all zero, that is
    when reference and prediction are both empty (its ``n_ref`` and ``n_pred`` are 0); that NaN is the
    correctly empty prediction."""
    dice = metrics["Dice"]
    if not _is_nan(dice):
        return float(dice)
    if rule == NNUNET:
        return None
    if rule != PAIRED:
        raise ValueError(f"Unknown empty-case rule {rule!r}; use one of {', '.join(RULES)}.")
    if metrics.get("n_ref", 0) or metrics.get("n_pred", 0):
        raise ValueError(f"nnU-Net wrote Dice NaN for a class with n_ref={metrics.get('n_ref')}, "
                         f"n_pred={metrics.get('n_pred')}; the summary is not nnUNetv2_evaluate_folder's.")
    return 1.0


def per_case_dice(summary_file: Path, rule: str = PAIRED) -> dict[str, float]:
    """Case file name -> mean over the foreground classes of one case's Dice, each class under ``rule``."""
    cases = {}
    for row in json.loads(Path(summary_file).read_text())["metric_per_case"]:
        values = [d for d in (class_dice(m, rule) for m in row["metrics"].values()) if d is not None]
        if values:
            cases[Path(row["reference_file"]).name] = float(np.mean(values))
    return cases


def evaluation_summary(predictions: Path, arm: str, case_set: str) -> Path:
    """Where the benchmark keeps nnUNetv2_evaluate_folder's summary of one arm on one set."""
    return Path(predictions) / arm / f"{case_set}_summary.json"


def arm_cases(predictions: Path, arm: str, rule: str = PAIRED) -> dict[str, dict[str, float]]:
    """``per_case_dice`` of one arm on every set, from its evaluation summaries."""
    return {case_set: per_case_dice(evaluation_summary(predictions, arm, case_set), rule) for case_set in SETS}
