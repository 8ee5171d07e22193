"""Resume, determinism and divergence of the search, through the real ``nnUNetv2_train`` entry point.

These runs use fold 1 with the fold-0 base checkpoint (``nnUNet_IAC_base`` accepts a file), so they
never touch the fold-0 folders of the other integration tests.
"""
import json

import pytest
import torch

from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype
from nnunet_workspace import DATASET_ID, assert_failed_write_kept_the_previous_files, epochs_started, training_logs

pytestmark = pytest.mark.integration

FOLD = "1"
ENV = {"nnUNet_IAC_epochs": "4", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "3",
       "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0", "nnUNet_IAC_seed": "7",
       "nnUNet_IAC_search_validation": "0"}


@pytest.fixture(scope="module")
def base_checkpoint(workspace):
    return workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"


def search(workspace, base_checkpoint, trainer, *extra, env=None, check=True, fold=FOLD):
    return workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", fold, "-tr", trainer, "-device", "cpu", *extra,
                         env={**ENV, "nnUNet_IAC_base": str(base_checkpoint), **(env or {})}, check=check)


def fold_folder(workspace, trainer, fold=FOLD):
    return workspace.results / f"{trainer}__nnUNetPlans__2d" / f"fold_{fold}"


def probes_without_timing(folder):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in json.loads((folder / "probe_history.json").read_text())]


def history_without_timing(folder):
    rows = json.loads((folder / "search_history.json").read_text())
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(workspace, base_checkpoint, tmp_path_factory):
    """The same search twice, the second in a fresh nnUNet_results so that it cannot read the first's files."""
    search(workspace, base_checkpoint, "nnUNetTrainerIACSearch")
    fresh = tmp_path_factory.mktemp("fresh_results")
    search(workspace, base_checkpoint, "nnUNetTrainerIACSearch", env={"nnUNet_results": str(fresh)})
    second = fresh / workspace.results.name / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / f"fold_{FOLD}"
    return second, fold_folder(workspace, "nnUNetTrainerIACSearch")


def test_two_searches_with_the_same_seed_give_identical_histories(uninterrupted):
    second, first = uninterrupted
    assert len(history_without_timing(second)) == 4
    assert history_without_timing(first) == history_without_timing(second)
    assert Genotype.load(first / "genotype.json") == Genotype.load(second / "genotype.json")


def test_interrupted_and_continued_search_repeats_the_uninterrupted_one(workspace, base_checkpoint, uninterrupted):
    """--c continues at the interrupted epoch (no Epoch 0 in its log, earlier rows and timestamps kept) and ends
    where the uninterrupted search ends."""
    trainer = "nnUNetTrainerIACSearchKilled"
    killed = search(workspace, base_checkpoint, trainer, env={"IAC_TEST_KILL_AFTER_EPOCH": "1"}, check=False)
    assert killed.returncode == 3
    folder = fold_folder(workspace, trainer)
    assert not (folder / "checkpoint_final.pth").exists()
    interrupted = safe_load(folder / "checkpoint_latest.pth")
    assert interrupted["current_epoch"] == 2
    rows_before = json.loads((folder / "search_history.json").read_text())
    assert [row["epoch"] for row in rows_before] == [0, 1]
    logs_before = training_logs(folder)

    search(workspace, base_checkpoint, trainer, "--c")
    (continued_log,) = training_logs(folder) - logs_before
    assert epochs_started(continued_log) == [2, 3]
    rows = json.loads((folder / "search_history.json").read_text())
    assert rows[:2] == rows_before, "--c rewrote the history of the epochs before the interruption"
    final = safe_load(folder / "checkpoint_final.pth")
    for key in ("epoch_start_timestamps", "epoch_end_timestamps", "train_losses"):
        assert final["logging"][key][:2] == interrupted["logging"][key][:2], key
    assert history_without_timing(folder) == history_without_timing(uninterrupted[1])
    assert probes_without_timing(folder) == probes_without_timing(uninterrupted[1])
    assert [r["epoch"] for r in probes_without_timing(folder)] == [0, 1, 2, 3]
    reference = safe_load(uninterrupted[1] / "checkpoint_final.pth")
    for key, value in reference["network_weights"].items():
        assert torch.equal(final["network_weights"][key], value), key
    assert Genotype.load(folder / "genotype.json") == Genotype.load(uninterrupted[1] / "genotype.json")


def test_an_adas_search_continued_with_c_repeats_the_uninterrupted_one_rates_included(workspace, base_checkpoint,
                                                                                      tmp_path_factory):
    """nnUNet_IAC_cell_optimizer=adas (issue 17): the per-convolution rates move with the probes, live in the
    optimizer state of nnU-Net's checkpoint, and a search killed after epoch 1 and continued with --c ends with
    the uninterrupted search's weights, rates and probe history. Fold 2, its own folders."""
    adas = {"nnUNet_IAC_cell_optimizer": "adas"}
    fresh = tmp_path_factory.mktemp("adas_results")
    search(workspace, base_checkpoint, "nnUNetTrainerIACSearch", env={**adas, "nnUNet_results": str(fresh)},
           fold="2")
    reference_folder = fresh / workspace.results.name / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / "fold_2"
    trainer = "nnUNetTrainerIACSearchKilled"
    killed = search(workspace, base_checkpoint, trainer, env={**adas, "IAC_TEST_KILL_AFTER_EPOCH": "1"},
                    check=False, fold="2")
    assert killed.returncode == 3
    search(workspace, base_checkpoint, trainer, "--c", env=adas, fold="2")
    folder = fold_folder(workspace, trainer, fold="2")
    final, reference = (safe_load(f / "checkpoint_final.pth") for f in (folder, reference_folder))
    for key, value in reference["network_weights"].items():
        assert torch.equal(final["network_weights"][key], value), key
    rates = [g["lr"] for g in final["optimizer_state"]["param_groups"] if g.get("adas_module")]
    assert rates == [g["lr"] for g in reference["optimizer_state"]["param_groups"] if g.get("adas_module")]
    assert len(set(rates)) > 1, "Adas left every convolution at the same rate"
    probes = probes_without_timing(folder)
    assert probes == probes_without_timing(reference_folder)
    assert all(row["learning_rates"] for row in probes)
    assert (folder / "probe.png").is_file()
    assert json.loads((folder / "iac_settings.json").read_text())["cell_optimizer"] == "adas"


def test_stable_genotype_stops_the_search_early_with_its_final_files(workspace, base_checkpoint):
    """The default-on early stop, end to end: alpha/beta fixed, so the genotype is stable from the first search
    epoch on and nnUNet_IAC_stable_epochs=1 stops after epoch 1 of 4."""
    trainer = "nnUNetTrainerIACSearchFixedAlpha"
    search(workspace, base_checkpoint, trainer, env={"nnUNet_IAC_warmup_epochs": "0", "nnUNet_IAC_stable_epochs": "1"})
    folder = fold_folder(workspace, trainer)
    history = json.loads((folder / "search_history.json").read_text())
    assert [(row["epoch"], row["phase"]) for row in history] == [(0, "search"), (1, "search")]
    (log,) = training_logs(folder)
    assert epochs_started(log) == [0, 1] and "stopping the search early" in log.read_text()
    final = safe_load(folder / "checkpoint_final.pth")
    assert final["current_epoch"] == 2 and not (folder / "checkpoint_latest.pth").exists()
    assert Genotype.load(folder / "genotype.json") == Genotype.from_dict(history[-1]["genotype"])
    for picture in ("genotype.png", "operation_weights.png", "progress.png"):
        assert (folder / picture).stat().st_size > 1000, picture


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


ALL_THREE = ("search_history.json", "genotype.json", "checkpoint_latest.pth")


@pytest.mark.parametrize("failing, kept, rows", [("search_history.json", ALL_THREE, [0]),
                                                 ("checkpoint_latest.pth", ("checkpoint_latest.pth",), [0, 1])])
def test_a_write_failing_half_way_keeps_the_last_good_search_files(workspace, base_checkpoint, tmp_path, failing,
                                                                  kept, rows):
    """In epoch 1 the disk fills up half-way through the history (the first file written after an epoch: all
    three files keep epoch 0) or through the checkpoint (written last: history and genotype already hold
    epoch 1, the checkpoint must still be epoch 0's)."""
    trainer = "nnUNetTrainerIACSearchDiskFull"
    snapshot = tmp_path / "before_epoch_1"
    result = search(workspace, base_checkpoint, trainer, check=False, env={
        "nnUNet_IAC_epochs": "3", "IAC_TEST_DISK_FULL_EPOCH": "1", "IAC_TEST_DISK_FULL_FILE": failing,
        "IAC_TEST_SNAPSHOT": str(snapshot), "nnUNet_results": str(tmp_path / "results")})
    folder = tmp_path / "results" / workspace.results.name / f"{trainer}__nnUNetPlans__2d" / f"fold_{FOLD}"
    assert_failed_write_kept_the_previous_files(result, folder, snapshot, kept)
    assert safe_load(folder / "checkpoint_latest.pth")["current_epoch"] == 1
    assert [row["epoch"] for row in history_without_timing(folder)] == rows


def test_unusable_setting_stops_the_search_at_start_up_with_the_variable_named(workspace, base_checkpoint, tmp_path):
    result = search(workspace, base_checkpoint, "nnUNetTrainerIACSearch", check=False,
                    env={"nnUNet_IAC_k": "four", "nnUNet_results": str(tmp_path)})
    assert result.returncode != 0
    assert "SettingsError" in result.stderr and "nnUNet_IAC_k='four'" in result.stderr
    assert not list(tmp_path.rglob("*.pth"))


def test_continuing_from_an_unsafe_checkpoint_is_refused_with_the_file_named(workspace, base_checkpoint, tmp_path):
    folder = tmp_path / workspace.results.name / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / f"fold_{FOLD}"
    folder.mkdir(parents=True)
    unsafe = folder / "checkpoint_latest.pth"
    torch.save({"network_weights": {}, "current_epoch": 1, "payload": NotPlainData()}, unsafe)
    result = search(workspace, base_checkpoint, "nnUNetTrainerIACSearch", "--c", check=False,
                    env={"nnUNet_results": str(tmp_path)})
    assert result.returncode != 0
    assert "CheckpointReadError" in result.stderr and str(unsafe) in result.stderr and "NotPlainData" in result.stderr
    assert not (folder / "checkpoint_final.pth").exists()


class NotPlainData:
    """An object a weights-only load refuses (it would need arbitrary unpickling)."""
