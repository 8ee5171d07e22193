"""Empty cases in the paired comparisons (issue 37), on summaries written by nnU-Net's own evaluation.

An arm that correctly predicts nothing where the reference is empty gets Dice NaN from nnU-Net, an arm that
predicts false positives there gets 0. Before issue 37 the NaN case was dropped and the paired comparison lost
the one case that separates the arms; under the paired rule it counts 1 against 0."""
import math

import numpy as np
import pytest

from nnunet_iac.benchmark.case_dice import NNUNET, PAIRED, class_dice, per_case_dice
from nnunet_iac.benchmark.paired_statistics import paired_difference


def _evaluate(tmp_path, name: str, reference: dict, prediction: dict):
    """nnU-Net's compute_metrics_on_folder on 2d images written as NIfTI; returns its summary.json path."""
    import SimpleITK as sitk
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    folders = {"ref": tmp_path / f"{name}_ref", "pred": tmp_path / f"{name}_pred"}
    for kind, images in (("ref", reference), ("pred", prediction)):
        folders[kind].mkdir()
        for case, array in images.items():
            sitk.WriteImage(sitk.GetImageFromArray(array[None].astype(np.uint8)), str(folders[kind] / f"{case}.nii.gz"))
    summary = tmp_path / f"{name}_summary.json"
    compute_metrics_on_folder(str(folders["ref"]), str(folders["pred"]), str(summary), SimpleITKIO(), ".nii.gz", [1],
                              num_processes=1)
    return summary


def _square(top: int, left: int, size: int = 4) -> np.ndarray:
    image = np.zeros((12, 12))
    image[top:top + size, left:left + size] = 1
    return image


@pytest.fixture(scope="module")
def two_arms(tmp_path_factory):
    """The issue's reproduction: on the empty case arm A predicts nothing, arm B a false positive; elsewhere the
    two arms predict alike."""
    tmp_path = tmp_path_factory.mktemp("empty_cases")
    reference = {"full": _square(2, 2), "empty": np.zeros((12, 12)), "partial": _square(4, 4)}
    shared = {"full": _square(2, 2), "partial": _square(6, 6)}
    a = _evaluate(tmp_path, "a", reference, {**shared, "empty": np.zeros((12, 12))})
    b = _evaluate(tmp_path, "b", reference, {**shared, "empty": _square(0, 0, 2)})
    return a, b


def test_an_empty_case_stays_in_the_pair_and_separates_the_arms(two_arms):
    a, b = (per_case_dice(summary) for summary in two_arms)
    assert a["empty.nii.gz"] == 1.0 and b["empty.nii.gz"] == 0.0
    pair = paired_difference(a, b)
    assert pair["n"] == 3 and pair["mean"] == pytest.approx(1 / 3)
    # the rule before issue 37 (nnU-Net's NaN left out) loses the case: the arms would look identical
    old = paired_difference(*(per_case_dice(summary, NNUNET) for summary in two_arms))
    assert old["n"] == 2 and old["mean"] == 0.0


def test_the_headline_rule_is_nnunets_own_mean(two_arms):
    import json
    for summary in two_arms:
        nnunet = json.loads(summary.read_text())["foreground_mean"]["Dice"]
        assert np.mean(list(per_case_dice(summary, NNUNET).values())) == pytest.approx(nnunet)
    # and the paired rule differs from it exactly where nnU-Net wrote NaN (arm A's empty case)
    a = json.loads(two_arms[0].read_text())["metric_per_case"]
    empty = [row["metrics"]["1"] for row in a if row["reference_file"].endswith("empty.nii.gz")][0]
    assert math.isnan(empty["Dice"]) and empty["n_ref"] == 0 and empty["n_pred"] == 0


def test_a_nan_class_that_is_not_empty_is_refused_and_unknown_rules_too():
    assert class_dice({"Dice": math.nan, "n_ref": 0, "n_pred": 0}) == 1.0
    assert class_dice({"Dice": None}) == 1.0  # a summary without the counts (older files): NaN is nnU-Net's empty
    assert class_dice({"Dice": 0.0, "n_ref": 0, "n_pred": 5}, PAIRED) == 0.0
    with pytest.raises(ValueError, match="not nnUNetv2_evaluate_folder's"):
        class_dice({"Dice": math.nan, "n_ref": 3, "n_pred": 0})
    with pytest.raises(ValueError, match="Unknown empty-case rule"):
        class_dice({"Dice": math.nan}, "drop")
