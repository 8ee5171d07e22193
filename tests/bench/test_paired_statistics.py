"""Paired per-case statistics of the benchmark (issue 14): read nnU-Net's per-case Dice, compare arms case by case."""
import json
import math

import numpy as np
import pytest

from nnunet_iac.benchmark.case_dice import NNUNET, per_case_dice
from nnunet_iac.benchmark.paired_statistics import paired_comparisons, paired_difference, paired_table


def _summary(path, per_case):
    """An nnU-Net summary.json with per-case Dice of classes 1 and 2 (NaN where a class is absent)."""
    rows = [{"reference_file": f"/labels/{case}.nii.gz", "prediction_file": f"/pred/{case}.nii.gz",
             "metrics": {str(label): {"Dice": dice} for label, dice in enumerate(values, start=1)}}
            for case, values in per_case.items()]
    path.write_text(json.dumps({"metric_per_case": rows, "mean": {}, "foreground_mean": {}}))
    return path


def test_per_case_dice_counts_an_empty_class_as_correct_in_pairs_and_leaves_it_out_for_nnunets_mean(tmp_path):
    summary = _summary(tmp_path / "s.json", {"a": [0.8, 0.6], "b": [0.9, math.nan], "c": [math.nan, math.nan]})
    assert per_case_dice(summary) == pytest.approx({"a.nii.gz": 0.7, "b.nii.gz": 0.95, "c.nii.gz": 1.0})
    assert per_case_dice(summary, NNUNET) == pytest.approx({"a.nii.gz": 0.7, "b.nii.gz": 0.9})


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


def test_a_group_of_seeds_enters_a_row_with_its_seed_spread_and_a_wider_interval():
    """Two IAC seeds 4 points apart, each case alike: the case interval of their mean is narrow, the one over
    seeds and cases spans the seeds; the row says how many seeds each side had and each seed's mean."""
    rng = np.random.default_rng(2)
    base = {f"c{i}": float(v) for i, v in enumerate(rng.uniform(0.7, 0.9, 30))}
    seeds = [{case: dice + shift + float(rng.normal(0, 0.002)) for case, dice in base.items()} for shift in (0.0, 0.04)]
    row = paired_difference(seeds, base)
    assert row["seeds"] == [2, 1] and row["mean"] == pytest.approx(0.02, abs=0.002)
    assert row["seed_means"][0][1] - row["seed_means"][0][0] == pytest.approx(0.04, abs=0.002)
    case_low, case_high = row["ci95"]
    low, high = row["ci95_seeds_and_cases"]
    assert case_high - case_low < 0.005 and low < 0.005 and high > 0.035


def test_every_row_gets_holms_p_over_its_set_and_the_table_shows_both_intervals():
    cases = {"base": _sets(0.80, 0.70), "iac_seed1": _sets(0.84, 0.74), "iac_seed2": _sets(0.82, 0.72),
             "control": _sets(0.81, 0.71), "iac_selected": _sets(0.85, 0.75)}
    rows = paired_comparisons(cases)["test"]
    for row in rows.values():
        assert row["comparisons"] == len(rows) and row["wilcoxon_p"] <= row["holm_p"] <= 1.0
    table = "\n".join(paired_table({"test": rows}, notes={"iac_selected": "budget: +3 trials"}))
    assert "95% interval, cases | 95% interval, seeds and cases | seeds | Wilcoxon p | Holm p" in table
    assert "| iac_selected - base (budget: +3 trials) |" in table
    assert "| iac_mean_of_seeds - base |" in table and "| 2 vs 1 |" in table


def test_a_table_written_before_the_seed_aware_interval_still_prints():
    old = {"test": {"iac - base": {"n": 3, "mean": 0.01, "ci95": [0.0, 0.02], "wilcoxon_p": 0.2}}}
    assert "| test | iac - base | +1.00 | [+0.00, +2.00] | n/a | n/a | 0.2 | n/a | 3 |" in paired_table(old)


def test_the_forest_plot_draws_the_rows_of_iac_against_each_control_and_random_genotype(tmp_path):
    from nnunet_iac.benchmark.forest import forest_rows, write_forest_figure
    rng = np.random.default_rng(4)

    def arm(shift):
        return {s: {f"c{i}": 0.8 + shift + float(rng.normal(0, 0.01)) for i in range(20)} for s in ("validation", "test")}

    cases = {"base": arm(0.0), "iac_seed1": arm(0.02), "iac_seed2": arm(0.03), "control": arm(0.01),
             "control_lowlr": arm(0.025), "random_seed1": arm(0.0), "random_seed2": arm(0.01)}
    paired = paired_comparisons(cases)
    rows = forest_rows(paired)
    drawn = {r["comparison"] for r in rows if r["set"] == "test"}
    assert drawn == {"iac_mean_of_seeds - control", "iac_mean_of_seeds - control_lowlr",
                     "iac_mean_of_seeds - random_mean_of_seeds", "iac_mean_of_seeds - random_seed1",
                     "iac_mean_of_seeds - random_seed2", "iac_mean_of_seeds - best control (control_lowlr)"}
    for r in rows:  # the plotted numbers are the results.json rows, in points
        source = paired[r["set"]][r["comparison"]]
        assert r["mean"] == pytest.approx(100 * source["mean"])
        assert [r["low"], r["high"]] == pytest.approx([100 * x for x in source["ci95_seeds_and_cases"]])
        assert r["interval"] == "seeds and cases"
    single = forest_rows(paired_comparisons({"base": arm(0.0), "iac": arm(0.02), "control": arm(0.01)}))
    assert [(r["comparison"], r["interval"]) for r in single if r["set"] == "test"] == [
        ("iac - control", "cases"), ("iac - best control (control)", "cases")]
    path = write_forest_figure(tmp_path / "forest.png", rows, "toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
