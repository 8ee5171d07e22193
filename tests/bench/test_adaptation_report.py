"""The adaptation verdict (issue 36): arms compared with IAC paired by case and by support set, the best control
chosen after the fact, issue 36's bar checked per shot count."""
import numpy as np
import pytest

from nnunet_iac.benchmark.adaptation_report import (RANDOM_MEAN, ZERO_SHOT, paired_over_sets, shot_count_summary,
                                                    target_check)

CASES = [f"t{i}" for i in range(25)]
SOURCE = [f"s{i}" for i in range(5)]


def _record(fold: int, shifts: dict, rng, set_effect: float = 0.0) -> dict:
    """One support set's per-case Dice: every arm = a shared case difficulty + its shift + this set's effect."""
    difficulty = {c: 0.6 + 0.01 * i for i, c in enumerate(CASES)}
    dice = {arm: {"target_test": {c: difficulty[c] + shift + set_effect + float(rng.normal(0, 0.002))
                                  for c in CASES},
                  "source_forgetting": {c: 0.85 - abs(shift) for c in SOURCE}} for arm, shift in shifts.items()}
    return {"fold": fold, "support_seed": fold, "cases": ["a"], "dice": dice,
            "parameters": {arm: {"trained": 10, "stored": 10, "base": 100} for arm in shifts}}


SHIFTS = {"iac": 0.05, "control": 0.02, "control_norm": 0.035, "random_seed1": 0.01, "random_seed2": 0.03,
          "target_only": -0.1}


def test_iac_is_compared_with_each_control_the_best_one_and_the_random_mean():
    rng = np.random.default_rng(0)
    records = [_record(f, SHIFTS, rng, set_effect=0.01 * f) for f in range(3)]
    summary = shot_count_summary(records, {c: 0.5 for c in CASES}, {c: 0.9 for c in SOURCE})
    assert summary["best_control"] == "control_norm" and summary["test_cases"] == 25
    rows, comparisons = summary["rows"], summary["comparisons"]
    assert comparisons["iac - best control (control_norm)"]["mean"] == pytest.approx(0.015, abs=0.002)
    assert comparisons[f"iac - {RANDOM_MEAN}"]["mean"] == pytest.approx(0.03, abs=0.002)
    assert comparisons["iac - target_only"]["ci95"][0] > 0.1
    assert all(c["wilcoxon_p"] <= c["holm_p"] for c in comparisons.values())
    assert rows[ZERO_SHOT]["forgetting"] == pytest.approx(0.9) and rows["iac"]["forgetting"] == pytest.approx(0.8)
    assert rows["iac"]["minus_zero_shot"]["mean"] > 0.1 and len(rows["iac"]["target_per_set"]) == 3
    check = target_check("10", summary)
    assert check["met"] is True and "+1.0" in check["rule"]
    assert target_check("all", summary)["met"] is True


def test_a_gain_on_one_support_set_alone_does_not_clear_the_interval():
    """IAC +6 points on one support set, -1 on the two others: the case interval of the mean would sit above zero,
    the interval over support sets and cases does not."""
    rng = np.random.default_rng(1)
    differences = np.stack([np.full(25, 0.06), np.full(25, -0.01), np.full(25, -0.01)]) + rng.normal(0, 0.002, (3, 25))
    pair = paired_over_sets(differences)
    assert pair["mean"] == pytest.approx(0.0133, abs=0.002) and pair["ci95"][0] < 0 < pair["ci95"][1]
    assert pair["support_sets"] == 3 and pair["cases"] == 25


def test_the_bar_is_not_met_when_iac_trails_the_best_control():
    rng = np.random.default_rng(2)
    records = [_record(f, {**SHIFTS, "control_lowlr": 0.06}, rng) for f in range(3)]
    summary = shot_count_summary(records, {c: 0.5 for c in CASES}, {c: 0.9 for c in SOURCE})
    assert summary["best_control"] == "control_lowlr"
    assert target_check("5", summary)["met"] is False and target_check("all", summary)["met"] is False


def test_a_target_only_model_above_every_control_is_not_the_best_control_but_keeps_its_own_row():
    """The bar's best control is a fine-tuned copy of the base; the target-only model (20 brightfield cases: above
    every control) does not start from the base, so it is compared with IAC on its own row, never in its place."""
    rng = np.random.default_rng(3)
    records = [_record(f, {**SHIFTS, "target_only": 0.09}, rng) for f in range(3)]
    summary = shot_count_summary(records, {c: 0.5 for c in CASES}, {c: 0.9 for c in SOURCE})
    assert summary["best_control"] == "control_norm"
    assert summary["comparisons"]["iac - target_only"]["mean"] == pytest.approx(-0.04, abs=0.002)
    assert not any("best control (target_only)" in name for name in summary["comparisons"])


def test_the_forest_rows_are_adaptation_jsons_comparisons_in_points(tmp_path):
    """adaptation_forest.png draws exactly the comparisons adaptation.json holds (the best-control alias once)."""
    from nnunet_iac.benchmark.adaptation_report import adaptation_forest_rows
    from nnunet_iac.benchmark.forest import write_forest_figure

    rng = np.random.default_rng(3)
    summary = shot_count_summary([_record(f, SHIFTS, rng) for f in range(2)], {c: 0.5 for c in CASES},
                                 {c: 0.9 for c in SOURCE})
    rows = adaptation_forest_rows({"5": summary})
    drawn = {r["comparison"]: r for r in rows}
    expected = {n: c for n, c in summary["comparisons"].items() if not n.startswith("iac - best control")}
    assert set(drawn) == set(expected) and all(r["set"] == "5 shots" for r in rows)
    for name, c in expected.items():
        assert drawn[name]["mean"] == pytest.approx(100 * c["mean"])
        assert (drawn[name]["low"], drawn[name]["high"]) == pytest.approx((100 * c["ci95"][0], 100 * c["ci95"][1]))
    path = write_forest_figure(tmp_path / "forest.png", rows, "src -> tgt")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_long_retrain_diagnostic_stays_out_of_the_bars_comparisons():
    """iac_long_retrain (the searched genotype retrained for the controls' batches) is compared with IAC and the
    best control apart: the bar's comparisons and their Holm family are those of a run without it."""
    with_long = [_record(f, {**SHIFTS, "iac_long_retrain": 0.07}, np.random.default_rng(f)) for f in range(3)]
    without = [_record(f, SHIFTS, np.random.default_rng(f)) for f in range(3)]
    zero, source = {c: 0.5 for c in CASES}, {c: 0.9 for c in SOURCE}
    summary, plain = shot_count_summary(with_long, zero, source), shot_count_summary(without, zero, source)
    assert set(summary["comparisons"]) == set(plain["comparisons"])
    assert all(summary["comparisons"][n]["holm_p"] == pytest.approx(plain["comparisons"][n]["holm_p"])
               for n in plain["comparisons"])
    diagnostics = summary["diagnostics"]
    assert set(diagnostics) == {"iac_long_retrain - iac", "iac_long_retrain - control_norm"}
    assert diagnostics["iac_long_retrain - iac"]["mean"] == pytest.approx(0.02, abs=0.002)
    assert diagnostics["iac_long_retrain - control_norm"]["mean"] == pytest.approx(0.035, abs=0.002)
    assert plain["diagnostics"] == {}


def test_the_curve_draws_every_arm_but_the_base_and_single_random_genotypes_each_in_its_own_style(tmp_path):
    """The base sits near zero and would squeeze the other arms into the top of the axis, and the random
    genotypes are drawn as their mean; every drawn arm differs from every other in colour or marker (twelve arms
    once coloured two pairs alike: control and target_only, the base and a random genotype)."""
    from nnunet_iac.benchmark.adaptation_report import curve_arms, curve_styles, write_curve

    shifts = {**SHIFTS, **{f"control_{i}": 0.001 * i for i in range(8)}, "iac_long_retrain": 0.06}
    shots = {k: shot_count_summary([_record(f, shifts, np.random.default_rng(f)) for f in range(2)],
                                   {c: 0.5 for c in CASES}, {c: 0.9 for c in SOURCE}) for k in ("5", "10")}
    arms = curve_arms(shots)
    assert ZERO_SHOT in shots["5"]["rows"] and "random_seed1" in shots["5"]["rows"]
    assert set(arms) == set(shots["5"]["rows"]) - {ZERO_SHOT, "random_seed1", "random_seed2"}
    assert RANDOM_MEAN in arms and len(arms) > 10
    styles = curve_styles(arms)
    assert len({(s["color"], s["marker"]) for s in styles.values()}) == len(arms)
    assert styles["iac"]["linewidth"] > styles["control"]["linewidth"]
    assert styles["iac_long_retrain"]["linestyle"] == "--"
    assert write_curve(tmp_path / "curve.png", shots).read_bytes()[:4] == b"\x89PNG"
