"""scripts/adaptation_against_reference.py: every adapted arm of published support sets against one reference
prediction of the same target test cases, paired by case, resampling support sets and cases."""
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = [f"c{i}.png" for i in range(20)]


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import adaptation_against_reference
    return adaptation_against_reference


def _summary(path: Path, dice: dict) -> Path:
    """nnUNetv2_evaluate_folder's summary.json, the fields per_case_dice reads (an empty case: Dice NaN)."""
    rows = [{"reference_file": f"/labelsTs/{c}",
             "metrics": {"1": {"Dice": d, "n_ref": 0 if np.isnan(d) else 5, "n_pred": 0 if np.isnan(d) else 5}}}
            for c, d in dice.items()]
    path.write_text(json.dumps({"metric_per_case": rows}))
    return path


def _fold(path: Path, fold: int, shots: str, shifts: dict, reference: dict) -> Path:
    dice = {arm: {"target_test": {c: (1.0 if np.isnan(reference[c]) else reference[c]) + shift + 0.001 * fold
                                  for c in CASES}} for arm, shift in shifts.items()}
    path.write_text(json.dumps({"record": {"fold": fold, "shots": shots, "support_seed": fold, "dice": dice}}))
    return path


def test_each_arm_is_its_paired_difference_from_the_reference_per_shot_count(script, tmp_path):
    reference = {c: 0.5 + 0.01 * i for i, c in enumerate(CASES)}
    reference[CASES[0]] = float("nan")  # empty in both: Dice 1 under the benchmark's paired rule
    summary = _summary(tmp_path / "summary.json", reference)
    shifts = {"iac": -0.04, "control_firststage": 0.01, "random_seed1": -0.06, "random_seed2": -0.08}
    folds = [_fold(tmp_path / f"fold_{f}.json", f, "10" if f >= 3 else "5", shifts, reference) for f in (3, 0, 1, 4)]
    out = tmp_path / "result.json"
    assert script.main([str(summary), *map(str, folds), "--label", "inverted", "--out", str(out),
                        "--command", "nnUNetv2_predict ...", "--commit", "abc1234"]) == 0
    result = json.loads(out.read_text())
    assert list(result["shots"]) == ["5", "10"]
    assert result["shots"]["5"]["support_sets"] == [0, 1] and result["shots"]["10"]["support_sets"] == [3, 4]
    five = result["shots"]["5"]["arms"]
    assert five["iac"]["mean"] == pytest.approx(-0.04 + 0.0005, abs=1e-9)
    assert five["random_mean"]["mean"] == pytest.approx(-0.07 + 0.0005, abs=1e-9)
    assert five["iac"]["ci95"][1] < 0 < five["control_firststage"]["ci95"][0]
    assert result["reference"]["cases"] == len(CASES) and result["reference_per_case"][CASES[0]] == 1.0
    assert result["commit"] == "abc1234" and "| 10 | control_firststage | +1.35 |" in result["table"]


def test_support_sets_of_other_test_cases_are_refused(script, tmp_path):
    reference = {c: 0.5 for c in CASES}
    summary = _summary(tmp_path / "summary.json", dict(list(reference.items())[:10]))
    fold = _fold(tmp_path / "fold_0.json", 0, "5", {"iac": 0.0}, reference)
    with pytest.raises(SystemExit, match="not the reference's"):
        script.main([str(summary), str(fold), "--label", "x"])
    with pytest.raises(SystemExit, match="no such evaluation summary"):
        script.main([str(tmp_path / "missing.json"), str(fold), "--label", "x"])
