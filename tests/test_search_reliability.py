"""Resume, determinism and divergence of the search, through the real ``nnUNetv2_train`` entry point.

These runs use fold 1 with the fold-0 base checkpoint (``nnUNet_IAC_base`` accepts a file), so they
never touch the fold-0 folders of the other integration tests.
"""
import json
import shutil

import pytest
import torch

from nnunet_iac.checkpointing import safe_load
from nnunet_iac.genotype import Genotype
from nnunet_workspace import DATASET_ID

pytestmark = pytest.mark.integration

FOLD = "1"
ENV = {"nnUNet_IAC_epochs": "4", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "3",
       "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0", "nnUNet_IAC_seed": "7",
       "nnUNet_IAC_search_validation": "0"}


@pytest.fixture(scope="module")
def base_checkpoint(workspace):
    return workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"


def search(workspace, base_checkpoint, trainer, *extra, env=None, check=True):
    return workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", FOLD, "-tr", trainer, "-device", "cpu", *extra,
                         env={**ENV, "nnUNet_IAC_base": str(base_checkpoint), **(env or {})}, check=check)


def fold_folder(workspace, trainer):
    return workspace.results / f"{trainer}__nnUNetPlans__2d" / f"fold_{FOLD}"


def history_without_timing(folder):
    rows = json.loads((folder / "search_history.json").read_text())
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(workspace, base_checkpoint, tmp_path_factory):
    """The same search twice; the first run's history is kept aside before the second overwrites it."""
    search(workspace, base_checkpoint, "nnUNetTrainerIACSearch")
    first = tmp_path_factory.mktemp("first_run")
    shutil.copy(fold_folder(workspace, "nnUNetTrainerIACSearch") / "search_history.json", first)
    search(workspace, base_checkpoint, "nnUNetTrainerIACSearch")
    return first, fold_folder(workspace, "nnUNetTrainerIACSearch")


def test_two_searches_with_the_same_seed_give_identical_histories(uninterrupted):
    first, second = uninterrupted
    assert len(history_without_timing(second)) == 4
    assert history_without_timing(first) == history_without_timing(second)


def test_interrupted_and_continued_search_repeats_the_uninterrupted_one(workspace, base_checkpoint, uninterrupted):
    trainer = "nnUNetTrainerIACSearchKilled"
    killed = search(workspace, base_checkpoint, trainer, env={"IAC_TEST_KILL_AFTER_EPOCH": "1"}, check=False)
    assert killed.returncode == 3
    folder = fold_folder(workspace, trainer)
    assert not (folder / "checkpoint_final.pth").exists()
    assert safe_load(folder / "checkpoint_latest.pth")["current_epoch"] == 2
    assert len(history_without_timing(folder)) == 2

    search(workspace, base_checkpoint, trainer, "--c")
    assert history_without_timing(folder) == history_without_timing(uninterrupted[1])
    final, reference = safe_load(folder / "checkpoint_final.pth"), safe_load(uninterrupted[1] / "checkpoint_final.pth")
    for key in ("decoder.iac_architecture.alpha", "decoder.iac_architecture.beta"):
        assert torch.equal(final["network_weights"][key], reference["network_weights"][key]), key
    assert Genotype.load(folder / "genotype.json") == Genotype.load(uninterrupted[1] / "genotype.json")


def test_nan_loss_stops_the_search_and_keeps_the_last_good_state(workspace, base_checkpoint):
    trainer = "nnUNetTrainerIACSearchNaN"
    result = search(workspace, base_checkpoint, trainer, env={"IAC_TEST_NAN_FROM_EPOCH": "2"}, check=False)
    assert result.returncode != 0
    assert "SearchDiverged" in result.stderr and "diverged in epoch 2" in result.stderr
    folder = fold_folder(workspace, trainer)
    assert Genotype.load(folder / "genotype.json").meta["epoch"] == 1
    assert [row["epoch"] for row in history_without_timing(folder)] == [0, 1]
    latest = safe_load(folder / "checkpoint_latest.pth")
    assert latest["current_epoch"] == 2
    assert all(torch.isfinite(v).all() for v in latest["network_weights"].values() if v.is_floating_point())
    assert not (folder / "checkpoint_final.pth").exists()


def test_unwritable_results_folder_is_a_clear_error(workspace, base_checkpoint, tmp_path):
    not_a_folder = tmp_path / "results_is_a_file"
    not_a_folder.write_text("")
    result = search(workspace, base_checkpoint, "nnUNetTrainerIACSearch",
                    env={"nnUNet_results": str(not_a_folder / "results")}, check=False)
    assert result.returncode != 0
    assert "OutputFolderError" in result.stderr
    assert "cannot write the output folder" in result.stderr and "nnUNet_results" in result.stderr
    assert not_a_folder.read_text() == ""
