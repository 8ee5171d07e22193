"""nnUNetv2_predict time over the base's, both timed in the same sitting.

A benchmark grows over sittings (``--resume``): an arm added today is predicted today, the base was predicted
when the run began. This machine's speed differs between sittings by up to ~40 % (issue 18: the base took 31 s
in one sitting, 44 s in the next), so a ratio across sittings measures the machine, not the cells. Every stage
records the sitting it ran in (``stages.StageResult.sitting``); when a sitting predicts an arm and the base's
prediction is from another one, the benchmark predicts the base once more in this sitting, into a scratch
folder, as the stage ``retime_stage(sitting)``. A ratio then divides by the base time of the arm's own sitting.
Stages recorded before sittings existed (empty sitting) count as one sitting of their own.
"""
from __future__ import annotations

BASE_STAGE = "predict (base)"


def retime_stage(sitting: str) -> str:
    return f"predict (base, timed again in sitting {sitting})"


def needs_base_retime(stages: dict[str, dict], predicted: list[str], sitting: str) -> bool:
    """Whether this ``sitting`` predicted one of the ``predicted`` stages while the base was predicted in another
    one and has not been timed again in this one."""
    if stages.get(BASE_STAGE, {}).get("sitting", "") == sitting or retime_stage(sitting) in stages:
        return False
    return any(stages.get(name, {}).get("sitting", "") == sitting for name in predicted if name != BASE_STAGE)


def predict_ratio(stages: dict[str, dict], stage: str) -> dict:
    """The stage's seconds over the base's from the same sitting; ``same_sitting`` False when none exists (the
    arm was predicted in a sitting that did not time the base again: an older run), and the ratio is across
    sittings."""
    sitting = stages[stage].get("sitting", "")
    base = stages[BASE_STAGE]
    if base.get("sitting", "") != sitting and retime_stage(sitting) in stages:
        base = stages[retime_stage(sitting)]
    same = base.get("sitting", "") == sitting
    return {"value": stages[stage]["seconds"] / base["seconds"], "same_sitting": same,
            "base_seconds": base["seconds"]}
