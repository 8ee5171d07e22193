"""A prediction time is divided by the base's from the same sitting (issue 18 review): stages record their sitting,
a sitting that predicts an arm re-times the base once, ratios pick the base of the arm's sitting."""
import pytest

from nnunet_iac.benchmark.predict_time import BASE_STAGE, needs_base_retime, predict_ratio, retime_stage
from nnunet_iac.benchmark.stages import StageRunner


def _stage(seconds, sitting):
    return {"seconds": seconds, "sitting": sitting}


def test_an_arm_predicted_in_a_later_sitting_is_compared_with_the_base_timed_again_then():
    stages = {BASE_STAGE: _stage(30.0, "monday"), "predict (iac)": _stage(45.0, "monday"),
              "predict (iac_new)": _stage(66.0, "tuesday")}
    assert not needs_base_retime(stages, ["predict (iac)"], "monday")  # same sitting as the base
    assert needs_base_retime(stages, [BASE_STAGE, "predict (iac)", "predict (iac_new)"], "tuesday")
    assert not needs_base_retime(stages, ["predict (iac)"], "tuesday")  # nothing predicted on tuesday
    across = predict_ratio(stages, "predict (iac_new)")
    assert across == {"value": pytest.approx(66 / 30), "same_sitting": False, "base_seconds": 30.0}
    stages[retime_stage("tuesday")] = _stage(44.0, "tuesday")
    assert not needs_base_retime(stages, ["predict (iac_new)"], "tuesday")  # timed again once only
    assert predict_ratio(stages, "predict (iac_new)") == {"value": pytest.approx(1.5), "same_sitting": True,
                                                          "base_seconds": 44.0}
    assert predict_ratio(stages, "predict (iac)")["value"] == pytest.approx(1.5)  # monday's arm keeps monday's base


def test_stages_recorded_before_sittings_count_as_one_sitting_of_their_own():
    old = {BASE_STAGE: {"seconds": 30.0}, "predict (iac)": {"seconds": 36.0}}
    assert predict_ratio(old, "predict (iac)") == {"value": pytest.approx(1.2), "same_sitting": True,
                                                   "base_seconds": 30.0}
    old["predict (iac_new)"] = _stage(60.0, "today")
    assert needs_base_retime(old, ["predict (iac_new)"], "today")


def test_a_runner_records_its_sitting_and_a_resumed_one_keeps_the_old_stages_sitting(tmp_path):
    first = StageRunner(tmp_path, {})
    first.step("prepare", lambda: None)
    assert first.results["prepare"].sitting == first.sitting != ""
    resumed = StageRunner(tmp_path, {}, resume=True)
    resumed.sitting = "later"
    resumed.step("more", lambda: None)
    assert resumed.results["prepare"].sitting == first.sitting and resumed.results["more"].sitting == "later"
