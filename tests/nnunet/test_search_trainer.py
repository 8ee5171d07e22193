"""Stage II through the real ``nnUNetv2_train`` entry point, on CPU, on a tiny synthetic dataset."""
import json

import pytest
import torch

from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype, derive_genotype
from nnunet_iac.network.implant import is_base_key
from nnunet_iac.cells.operations import search_space
from nnunet_iac.search.optimizers import CELL_MOMENTUM
from nnunet_workspace import DATASET_ID

pytestmark = pytest.mark.integration

SEARCH_ENV = {"nnUNet_IAC_epochs": "3", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "3",
              "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0"}


@pytest.fixture(scope="module", params=["2d", "3d_fullres"])
def search(request, workspace):
    configuration = request.param
    base = workspace.train_base(configuration)
    before = folder_state(base)
    workspace.run("nnUNetv2_train", str(DATASET_ID), configuration, "0", "-tr", "nnUNetTrainerIACSearch",
                  "-device", "cpu", env={**SEARCH_ENV, "nnUNet_IAC_base": str(base)})
    folder = workspace.results / f"nnUNetTrainerIACSearch__nnUNetPlans__{configuration}" / "fold_0"
    assert folder_state(base) == before, "the search changed files of the base model folder"
    return configuration, base / "fold_0", folder


def folder_state(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_search_leaves_a_valid_genotype_and_its_pictures(search):
    configuration, _, folder = search
    genotype = Genotype.load(folder / "genotype.json")
    assert len(genotype.nodes) == 4 and all(len(node) == 2 for node in genotype.nodes)
    assert genotype.meta["spatial_dims"] == (2 if configuration == "2d" else 3)
    for name in ("genotype.png", "operation_weights.png", "progress.png", "search_history.json",
                 "search_split.json", "iac_settings.json", "checkpoint_final.pth", "validation/summary.json"):
        assert (folder / name).is_file(), name
    settings = json.loads((folder / "iac_settings.json").read_text())
    assert settings["epochs"] == 3 and settings["warmup_epochs"] == 1 and settings["mode"] == "residual"


def test_history_has_one_row_per_epoch_and_alpha_moves_only_after_warmup(search):
    _, _, folder = search
    history = json.loads((folder / "search_history.json").read_text())
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert [row["phase"] for row in history] == ["warmup", "search", "search"]
    uniform = torch.full((14, 8), 1 / 8)
    assert torch.equal(torch.tensor(history[0]["op_weights"]), uniform)
    assert not torch.equal(torch.tensor(history[2]["op_weights"]), uniform)
    assert history[0]["arch_loss"] is None and history[1]["arch_loss"] is not None
    for row in history:
        assert row["seconds"] > 0 and 0 <= row["parameter_free_ops"] <= 8 and row["alpha_entropy"] > 0


def test_genotype_is_the_one_derived_from_the_final_alpha_and_beta(search):
    """genotype.json and the last history row are what the paper's rule gives on the final checkpoint's alpha and
    beta (softmax over the operations of an edge, over the incoming edges of a node), recomputed here."""
    _, _, folder = search
    weights = safe_load(folder / "checkpoint_final.pth")["network_weights"]
    alpha, beta = weights["decoder.iac_architecture.alpha"], weights["decoder.iac_architecture.beta"]
    topology = CellTopology()
    rows = [range(topology.edge_offset(n), topology.edge_offset(n) + len(topology.node_inputs(n)))
            for n in range(topology.num_nodes)]
    edge_weights = torch.cat([torch.softmax(beta[list(r)], 0) for r in rows])
    expected = derive_genotype(torch.softmax(alpha, -1), edge_weights, topology, search_space())
    assert Genotype.load(folder / "genotype.json") == expected
    history = json.loads((folder / "search_history.json").read_text())
    assert Genotype.from_dict(history[-1]["genotype"]) == expected
    assert torch.allclose(torch.tensor(history[-1]["op_weights"]), torch.softmax(alpha, -1))


def test_search_split_uses_only_the_folds_training_cases(search, workspace):
    _, _, folder = search
    split = json.loads((folder / "search_split.json").read_text())
    folds = json.loads((workspace.root / "preprocessed" / "Dataset990_IACSynthetic" / "splits_final.json").read_text())
    assert sorted(split["train_search"] + split["val_search"]) == sorted(folds[0]["train"])
    assert not set(split["train_search"]) & set(split["val_search"])
    assert abs(len(split["train_search"]) - len(split["val_search"])) <= 1


def test_base_weights_are_bit_identical_to_the_base_checkpoint(search):
    _, base_fold, folder = search
    base = safe_load(base_fold / "checkpoint_final.pth")["network_weights"]
    searched = safe_load(folder / "checkpoint_final.pth")
    weights = searched["network_weights"]
    base_keys = [k for k in weights if is_base_key(k)]
    assert sorted(base_keys) == sorted(base)
    for key in base_keys:
        assert torch.equal(weights[key], base[key]), key
    assert "decoder.iac_architecture.alpha" in weights
    assert searched["iac"]["strategy"]["state"]["arch_optimizer_state"]["state"]  # Adam moments of alpha and beta
    assert searched["optimizer_state"]["param_groups"][0]["momentum"] == CELL_MOMENTUM
    assert searched["iac"]["strategy"]["state"]["arch_optimizer_state"]["param_groups"][0]["weight_decay"] == 0.0


def test_missing_base_stops_with_a_clear_error(workspace, tmp_path):
    result = workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "1", "-tr", "nnUNetTrainerIACSearch",
                           "-device", "cpu", env={**SEARCH_ENV, "nnUNet_IAC_base": str(tmp_path / "nowhere")},
                           check=False)
    assert result.returncode != 0
    assert "No trained base model found" in result.stderr
    assert str(tmp_path / "nowhere" / "fold_1" / "checkpoint_final.pth") in result.stderr
    assert "nnUNet_IAC_base" in result.stderr


def test_default_base_location_is_nnunets_own_trainer_folder(workspace):
    result = workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "1", "-tr", "nnUNetTrainerIACSearch",
                           "-device", "cpu", env=SEARCH_ENV, check=False)
    assert result.returncode != 0
    expected = workspace.results / "nnUNetTrainer__nnUNetPlans__2d" / "fold_1" / "checkpoint_final.pth"
    assert str(expected) in result.stderr
