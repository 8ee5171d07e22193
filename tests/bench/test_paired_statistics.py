"""Paired per-case statistics of the benchmark (issue 14): read nnU-Net's per-case Dice, compare arms case by case."""
import json
import math

import numpy as np
import pytest

from benchmarks.paired_statistics import paired_comparisons, paired_difference, paired_table, per_case_dice


def _summary(path, per_case):
    """An nnU-Net summary.json with per-case Dice of classes 1 and 2 (NaN where a class is absent)."""
    rows = [{"reference_file": f"/labels/{case}.nii.gz", "prediction_file": f"/pred/{case}.nii.gz",
             "metrics": {str(label): {"Dice": dice} for label, dice in enumerate(values, start=1)}}
            for case, values in per_case.items()]
    path.write_text(json.dumps({"metric_per_case": rows, "mean": {}, "foreground_mean": {}}))
    return path


def test_per_case_dice_is_the_mean_over_present_classes(tmp_path):
    summary = _summary(tmp_path / "s.json", {"a": [0.8, 0.6], "b": [0.9, math.nan], "c": [math.nan, math.nan]})
    cases = per_case_dice(summary)
    assert cases == pytest.approx({"a.nii.gz": 0.7, "b.nii.gz": 0.9})


def test_a_consistent_gain_has_an_interval_above_zero_and_no_gain_has_none():
    rng = np.random.default_rng(1)
    base = {f"c{i}": float(v) for i, v in enumerate(rng.uniform(0.7, 0.9, 40))}
    better = {case: dice + 0.01 + float(rng.normal(0, 0.003)) for case, dice in base.items()}
    gain = paired_difference(better, base)
    assert gain["n"] == 40 and gain["mean"] == pytest.approx(0.01, abs=0.002)
    assert 0 < gain["ci95"][0] < gain["mean"] < gain["ci95"][1] and gain["wilcoxon_p"] < 1e-6
    loss = paired_difference(base, better)
    assert loss["ci95"][1] < 0 and loss["mean"] == pytest.approx(-gain["mean"])
    same = paired_difference(base, dict(base))
    assert same["mean"] == 0 and same["ci95"] == [0, 0] and same["wilcoxon_p"] == 1.0


def test_only_shared_cases_are_compared_and_disjoint_sets_are_refused():
    assert paired_difference({"a": 0.9, "b": 0.5}, {"a": 0.8, "z": 0.1})["n"] == 1
    with pytest.raises(ValueError, match="share no case"):
        paired_difference({"a": 0.9}, {"b": 0.9})


def test_comparisons_cover_every_seed_their_mean_and_the_control():
    sets = {s: {"x": 0.8, "y": 0.7} for s in ("validation", "test")}
    shifted = {s: {"x": 0.82, "y": 0.71} for s in ("validation", "test")}
    cases = {"base": sets, "control": shifted, "iac_seed1": shifted, "iac_seed2": sets}
    paired = paired_comparisons(cases, ["iac_seed1", "iac_seed2"])
    rows = paired["test"]
    assert set(rows) == {"iac_seed1 - base", "iac_seed1 - control", "iac_seed2 - base", "iac_seed2 - control",
                         "iac_mean_of_seeds - base", "iac_mean_of_seeds - control", "control - base"}
    assert rows["iac_mean_of_seeds - base"]["mean"] == pytest.approx(0.0075)
    assert "| test | control - base | +1.50 |" in "\n".join(paired_table(paired))
