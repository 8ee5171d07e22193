"""Paired per-case statistics of the benchmark (issue 14): read nnU-Net's per-case Dice, compare arms case by case."""
import json
import math

import numpy as np
import pytest

from nnunet_iac.benchmark.paired_statistics import paired_comparisons, paired_difference, paired_table, per_case_dice


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


def _sets(x: float, y: float) -> dict:
    return {s: {"x": x, "y": y} for s in ("validation", "test")}


def test_comparisons_cover_every_seed_their_mean_and_the_control():
    cases = {"base": _sets(0.8, 0.7), "control": _sets(0.82, 0.71), "iac_seed1": _sets(0.82, 0.71),
             "iac_seed2": _sets(0.8, 0.7)}
    paired = paired_comparisons(cases)
    rows = paired["test"]
    assert set(rows) == {"iac_seed1 - base", "iac_seed1 - control", "iac_seed2 - base", "iac_seed2 - control",
                         "iac_mean_of_seeds - base", "iac_mean_of_seeds - control",
                         "iac_mean_of_seeds - best control (control)", "control - base"}
    assert rows["iac_mean_of_seeds - base"]["mean"] == pytest.approx(0.0075)
    assert "| test | control - base | +1.50 |" in "\n".join(paired_table(paired))


def test_controls_with_seeds_random_genotypes_and_the_best_control_are_compared():
    cases = {"base": _sets(0.80, 0.70), "iac_seed1": _sets(0.84, 0.74),
             "control": _sets(0.81, 0.71), "control_seed2": _sets(0.83, 0.73),   # restart: mean +0.02
             "control_decoder": _sets(0.83, 0.74),                                # +0.035: the best
             "random_seed1": _sets(0.80, 0.70), "random_seed2": _sets(0.82, 0.72)}
    rows = paired_comparisons(cases)["validation"]
    assert rows["iac_seed1 - control_mean_of_seeds"]["mean"] == pytest.approx(0.02)
    assert rows["iac_seed1 - control_decoder"]["mean"] == pytest.approx(0.005)
    assert rows["iac_seed1 - best control (control_decoder)"]["mean"] == pytest.approx(0.005)
    assert rows["iac_seed1 - random_mean_of_seeds"]["mean"] == pytest.approx(0.03)
    assert rows["iac_seed1 - random_seed2"]["mean"] == pytest.approx(0.02)
    assert rows["random_mean_of_seeds - base"]["mean"] == pytest.approx(0.01)
    assert rows["control_decoder - base"]["mean"] == pytest.approx(0.035)
    assert not any(name.startswith(("control", "random")) and not name.endswith("- base") for name in rows)


def test_the_selected_genotype_is_compared_with_the_references_and_the_searched_one():
    cases = {"base": _sets(0.80, 0.70), "iac_seed1": _sets(0.82, 0.72), "iac_seed2": _sets(0.84, 0.74),
             "iac_selected": _sets(0.85, 0.75), "control": _sets(0.81, 0.71)}
    rows = paired_comparisons(cases)["test"]
    assert rows["iac_selected - base"]["mean"] == pytest.approx(0.05)
    assert rows["iac_selected - control"]["mean"] == pytest.approx(0.04)
    assert rows["iac_selected - iac_mean_of_seeds"]["mean"] == pytest.approx(0.02)
    assert "iac_mean_of_seeds - best control (control)" in rows  # the seeds' mean stays the main IAC result


def test_iac_variants_are_compared_with_the_base_the_reference_iac_and_the_best_control():
    cases = {"base": _sets(0.80, 0.70), "iac_seed1": _sets(0.82, 0.72), "iac_seed2": _sets(0.84, 0.74),
             "iac_lth_seed1": _sets(0.81, 0.71), "iac_lth_seed2": _sets(0.83, 0.73),
             "iac_shapley_seed1": _sets(0.86, 0.76), "control": _sets(0.81, 0.71)}
    rows = paired_comparisons(cases)["validation"]
    assert rows["iac_lth_mean_of_seeds - base"]["mean"] == pytest.approx(0.02)
    assert rows["iac_lth_mean_of_seeds - iac_mean_of_seeds"]["mean"] == pytest.approx(-0.01)
    assert rows["iac_lth_mean_of_seeds - best control (control)"]["mean"] == pytest.approx(0.01)
    assert rows["iac_shapley_seed1 - iac_mean_of_seeds"]["mean"] == pytest.approx(0.03)
    # the PC-DARTS arm stays the main IAC result; no strategy arm is taken for a reference of the others
    assert "iac_mean_of_seeds - best control (control)" in rows
    assert not any(name.endswith(("- iac_lth_mean_of_seeds", "- iac_shapley_seed1")) for name in rows)


def test_comparisons_need_the_base_and_an_iac_arm():
    with pytest.raises(ValueError, match="base and an IAC arm"):
        paired_comparisons({"base": _sets(0.8, 0.7), "control": _sets(0.8, 0.7)})


def test_the_figure_shows_every_arm_on_both_sets(tmp_path):
    from nnunet_iac.benchmark.figure import mean_with_interval, write_dice_figure
    cases = {"base": _sets(0.8, 0.7), "iac_seed1": _sets(0.84, 0.74), "random_seed1": _sets(0.81, 0.72)}
    path = write_dice_figure(tmp_path / "dice.png", cases, "toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mean, low, high = mean_with_interval([0.7, 0.8, 0.9])
    assert mean == pytest.approx(0.8) and 0.7 - 1e-9 <= low < mean < high <= 0.9 + 1e-9
