"""``--base MODEL_FOLDER`` (issue 36): what the adaptation benchmark accepts as the user's own source model, what it
refuses with the fix named, and the plans it moves to the target. Model folders are written as nnU-Net lays them
out (plans.json, dataset.json, fold_F/checkpoint_final.pth, fold_F/validation); nothing is trained here."""
import json
from pathlib import Path

import pytest

from nnunet_iac.benchmark.datasets import DatasetError
from nnunet_iac.benchmark.user_base import (USER_PLANS, link_into_results, load_user_base, set_arm_batch,
                                            write_source_plans)

LABELS = {"background": 0, "nucleus": 1}
TARGET_JSON = {"channel_names": {"0": "R"}, "labels": LABELS, "file_ending": ".png", "numTraining": 4}


def model_folder(root: Path, name: str = "nnUNetTrainer__nnUNetPlans__2d", labels: dict = LABELS,
                 channels: int = 1, folds: tuple[int, ...] = (0,), validation: tuple[str, ...] = ("case_1",)) -> Path:
    folder = root / "Dataset001_Source" / name
    folder.mkdir(parents=True)
    plans = {"dataset_name": "Dataset001_Source", "plans_name": "nnUNetPlans",
             "configurations": {"2d": {"batch_size": 12, "patch_size": [256, 256], "data_identifier": "nnUNetPlans_2d",
                                       "architecture": {"network_class_name": "X", "arch_kwargs": {"n_stages": 7}}},
                                "2d_big": {"inherits_from": "2d", "batch_size": 40}}}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(
        {"channel_names": {str(c): f"c{c}" for c in range(channels)}, "labels": labels, "file_ending": ".png"}))
    for fold in folds:
        (folder / f"fold_{fold}" / "validation").mkdir(parents=True)
        (folder / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"weights")
        for case in validation:
            (folder / f"fold_{fold}" / "validation" / f"{case}.png").write_bytes(b"png")
    return folder


def refusal(folder, fold: int = 0, target: dict = TARGET_JSON) -> str:
    with pytest.raises(DatasetError) as error:
        load_user_base(folder, fold, target)
    return str(error.value)


def test_a_trained_2d_model_folder_is_the_base_predicted_under_its_own_names(tmp_path):
    folder = model_folder(tmp_path, folds=(0, 3))
    base = load_user_base(folder, 3, TARGET_JSON)
    assert base.checkpoint == folder / "fold_3" / "checkpoint_final.pth"
    arm = base.arm()
    assert (arm.trainer, arm.plans, arm.fold_index, arm.name) == ("nnUNetTrainer", "nnUNetPlans", 3, "base")
    assert base.validation_cases(["case_0", "case_1", "case_2"]) == ["case_1"]


def test_folders_that_are_not_a_trained_2d_model_are_refused_naming_the_fix(tmp_path):
    assert "not an nnU-Net model folder" in refusal(tmp_path / "nowhere")
    assert "3d_fullres model" in refusal(model_folder(tmp_path / "a", name="nnUNetTrainer__nnUNetPlans__3d_fullres"))
    no_plans = model_folder(tmp_path / "b")
    (no_plans / "plans.json").unlink()
    assert "has no plans.json" in refusal(no_plans)
    message = refusal(model_folder(tmp_path / "c", folds=(1, 2)), fold=0)
    assert "fold_0/checkpoint_final.pth does not exist" in message and "--base-fold (fold_1, fold_2)" in message


def test_a_base_with_other_labels_or_channels_than_the_target_is_refused(tmp_path):
    message = refusal(model_folder(tmp_path / "a", labels={"background": 0, "cell": 1}))
    assert "other labels" in message and "cell" in message and "nucleus" in message
    assert "2 input channel(s), the target has 1" in refusal(model_folder(tmp_path / "b", channels=2))


def test_forgetting_cases_come_from_the_bases_validation_fold_and_must_be_source_cases(tmp_path):
    base = load_user_base(model_folder(tmp_path / "a", validation=()), 0, TARGET_JSON)
    with pytest.raises(DatasetError, match="--val"):
        base.validation_cases(["case_1"])
    base = load_user_base(model_folder(tmp_path / "b", validation=("other_7",)), 0, TARGET_JSON)
    with pytest.raises(DatasetError, match="not training cases of SOURCE_DIR"):
        base.validation_cases(["case_1"])


def test_the_bases_plans_are_moved_at_the_arms_batch_with_only_the_2d_configuration(tmp_path):
    base = load_user_base(model_folder(tmp_path), 0, TARGET_JSON)
    name = write_source_plans(base, tmp_path / "preprocessed" / "Dataset001_Source")
    written = json.loads((tmp_path / "preprocessed" / "Dataset001_Source" / f"{name}.json").read_text())
    assert name == USER_PLANS == written["plans_name"]
    assert written["configurations"] == base.plans["configurations"]
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(written))
    configuration = set_arm_batch(moved, 2, None)
    plans = json.loads(moved.read_text())
    assert list(plans["configurations"]) == ["2d"] and configuration["batch_size"] == 2
    assert configuration["patch_size"] == [256, 256]
    assert configuration["architecture"] == base.plans["configurations"]["2d"]["architecture"]
    assert set_arm_batch(moved, 2, (128, 128))["patch_size"] == [128, 128]


def test_the_model_folder_is_linked_not_copied_and_a_resume_with_another_base_is_refused(tmp_path):
    base = load_user_base(model_folder(tmp_path / "mine"), 0, TARGET_JSON)
    results = tmp_path / "run" / "nnUNet_results" / "Dataset001_Source"
    link = link_into_results(base, results)
    assert link.is_symlink() and link.resolve() == base.folder
    assert link_into_results(base, results) == link  # a resumed run with the same base
    other = load_user_base(model_folder(tmp_path / "theirs"), 0, TARGET_JSON)
    with pytest.raises(DatasetError, match="started with the base"):
        link_into_results(other, results)


def test_a_link_named_as_a_model_folder_is_accepted_and_linked_into_the_run(tmp_path):
    real = model_folder(tmp_path / "store", name="nnUNetTrainer__nnUNetPlans__2d")
    stored = real.parent / "model_v3"
    real.rename(stored)
    alias = tmp_path / "nnUNetTrainer__nnUNetPlans__2d"
    alias.symlink_to(stored, target_is_directory=True)
    base = load_user_base(alias, 0, TARGET_JSON)
    link = link_into_results(base, tmp_path / "run" / "nnUNet_results" / "Dataset001_Source")
    assert link.name == "nnUNetTrainer__nnUNetPlans__2d" and link.resolve() == stored.resolve()


def test_a_run_keeps_the_base_it_started_with(tmp_path):
    from nnunet_iac.benchmark.user_base import check_base_record

    mine = load_user_base(model_folder(tmp_path / "mine"), 0, TARGET_JSON)
    out = tmp_path / "out"
    out.mkdir()
    check_base_record(out, mine)
    check_base_record(out, mine)  # resumed with the same base
    theirs = load_user_base(model_folder(tmp_path / "theirs"), 0, TARGET_JSON)
    with pytest.raises(DatasetError, match="was started with --base .*mine"):
        check_base_record(out, theirs)
    with pytest.raises(DatasetError, match="was started with --base"):
        check_base_record(out, None)  # resumed without --base: the benchmark would train a base of its own
    own = tmp_path / "own"
    own.mkdir()
    check_base_record(own, None)
    with pytest.raises(DatasetError, match="the benchmark's own base"):
        check_base_record(own, mine)


def test_a_base_checkpoint_that_changed_since_the_run_started_stops_the_run(tmp_path):
    from nnunet_iac.benchmark.adaptation import record_base_hash
    from nnunet_iac.benchmark.stages import StageError

    checkpoint = tmp_path / "checkpoint_final.pth"
    checkpoint.write_bytes(b"trained")
    first = record_base_hash(tmp_path, checkpoint)
    assert record_base_hash(tmp_path, checkpoint) == first
    checkpoint.write_bytes(b"retrained")
    with pytest.raises(StageError, match="not the one this run started with"):
        record_base_hash(tmp_path, checkpoint)
