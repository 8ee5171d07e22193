"""Search and retrain under nnU-Net's DDP path in two processes on the CPU (gloo), issue 39.

``tests/ddp_harness.py`` is nnU-Net's ``run_ddp`` with gloo; the trainers are the real IAC trainers with only
nnU-Net's CUDA-only device and ``device_ids`` replaced (``tests/nnunet_trainers/nnUNetTrainerIACCPUDDP.py``
says what exactly). The ranks draw their own batches here, so a whole search is compared rank against rank
and run against run, not against one process; one process on the global batch is the comparison of
``tests/search/test_architecture_step_ddp.py``.
"""
import json
from pathlib import Path

import pytest
import torch

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.network.implant import is_base_key
from nnunet_workspace import DATASET_ID

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).resolve().parents[1] / "ddp_harness.py"
ENV = {"nnUNet_IAC_epochs": "3", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
       "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0", "nnUNet_IAC_seed": "5",
       "nnUNet_IAC_search_validation": "0", "nnUNet_IAC_retrain_validation": "0", "nnUNet_IAC_save_every": "1"}
SEARCH = "nnUNetTrainerIACSearchCPUDDP"


def run_ddp(workspace, trainer, dump, *extra, env=None, check=True):
    base = workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"
    return workspace.run("python", str(HARNESS), str(DATASET_ID), "2d", "0", trainer, *extra, check=check,
                         env={**ENV, "nnUNet_IAC_base": str(base), "IAC_TEST_DDP_DUMP": str(dump), **(env or {})})


def ranks(dump):
    return [{**json.loads((dump / f"rank{r}.json").read_text()),
             "weights": torch.load(dump / f"weights_rank{r}.pth", weights_only=True)} for r in (0, 1)]


def fold_folder(workspace, trainer):
    return workspace.results / f"{trainer}__nnUNetPlans__2d" / "fold_0"


@pytest.fixture(scope="module")
def search(workspace, tmp_path_factory):
    dump = tmp_path_factory.mktemp("ddp_search")
    run_ddp(workspace, SEARCH, dump)
    return fold_folder(workspace, SEARCH), ranks(dump)


def assert_equal_weights(first, second):
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_the_search_runs_under_ddp_with_the_batch_split_over_the_ranks(search, workspace):
    folder, (rank0, rank1) = search
    plans = json.loads((workspace.results.parent.parent / "preprocessed" / workspace.results.name /
                        "nnUNetPlans.json").read_text())
    assert rank0["network"] == rank1["network"] == "DistributedDataParallel"
    assert rank0["device"] == "cpu" and rank0["is_ddp"]
    assert rank0["batch_size"] + rank1["batch_size"] == plans["configurations"]["2d"]["batch_size"]


def test_every_rank_ends_with_the_same_architecture_cells_and_genotype(search):
    folder, (rank0, rank1) = search
    assert_equal_weights(rank0["weights"], rank1["weights"])
    alpha = next(v for k, v in rank0["weights"].items() if k.endswith("alpha"))
    assert not torch.equal(alpha, torch.ones_like(alpha)), "alpha/beta never moved"
    assert rank0["genotype"] == rank1["genotype"]
    assert rank0["history_genotypes"] == rank1["history_genotypes"] and len(rank0["history_genotypes"]) == 3
    assert Genotype.load(folder / "genotype.json") == Genotype.from_dict(rank0["genotype"])


def test_only_rank_0_writes_the_search_files(search):
    folder, (rank0, rank1) = search
    assert rank1["files_written"] == []
    names = {p.split("/")[-1] for p in rank0["files_written"]}
    for name in ("genotype.json", "search_history.json", "search_split.json", "iac_settings.json",
                 "checkpoint_latest.pth", "checkpoint_final.pth", "genotype.png", "operation_weights.png"):
        assert name in names, name
        assert (folder / name).is_file() or name == "checkpoint_latest.pth", name


def test_a_ddp_search_continued_with_c_repeats_the_uninterrupted_one(search, workspace, tmp_path):
    trainer = "nnUNetTrainerIACSearchCPUDDPResumed"
    killed = run_ddp(workspace, trainer, tmp_path / "killed", env={"IAC_TEST_DDP_KILL_AFTER_EPOCH": "1"},
                     check=False)
    assert killed.returncode != 0
    folder = fold_folder(workspace, trainer)
    assert safe_load(folder / "checkpoint_latest.pth")["current_epoch"] == 2
    assert not (folder / "checkpoint_final.pth").exists()
    run_ddp(workspace, trainer, tmp_path / "continued", "--c")
    continued = ranks(tmp_path / "continued")
    assert_equal_weights(continued[0]["weights"], continued[1]["weights"])
    assert_equal_weights(continued[0]["weights"], search[1][0]["weights"])
    assert continued[0]["history_genotypes"] == search[1][0]["history_genotypes"]
    assert continued[1]["files_written"] == []


def test_the_retrain_runs_under_ddp_with_the_frozen_base_left_out(search, workspace, tmp_path):
    trainer = "nnUNetTrainerIACRetrainCPUDDP"
    run_ddp(workspace, trainer, tmp_path, env={"nnUNet_IAC_epochs": "2",
                                               "nnUNet_IAC_genotype": str(search[0] / "genotype.json")})
    rank0, rank1 = ranks(tmp_path)
    assert rank0["network"] == "DistributedDataParallel"
    assert_equal_weights(rank0["weights"], rank1["weights"])
    assert rank1["files_written"] == []
    final = safe_load(fold_folder(workspace, trainer) / "checkpoint_final.pth")["network_weights"]
    base = safe_load(workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth")["network_weights"]
    base_keys = [key for key in final if is_base_key(key)]
    assert sorted(base_keys) == sorted(base)
    assert all(torch.equal(final[key], base[key]) for key in base_keys), "the frozen base moved under DDP"
    assert Genotype.load(fold_folder(workspace, trainer) / "genotype.json") == Genotype.load(search[0] / "genotype.json")
