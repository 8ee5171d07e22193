"""The search strategies through nnU-Net's own command (issues 16, 18): chosen by nnUNet_IAC_strategy, recorded; the
pruning ones stop once every edge has one operation left, the cost-aware one records its expected cost."""
import json
from pathlib import Path

import pytest
import torch

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.nnunet.checkpointing import safe_load


def copy_plans(workspace, plans_name: str) -> None:
    """The tiny dataset's plans under another name, so each search gets its own output folder."""
    from nnunet_workspace import DATASET

    preprocessed = Path(workspace.env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    (preprocessed / f"{plans_name}.json").write_text(json.dumps({**plans, "plans_name": plans_name}))


@pytest.mark.integration
@pytest.mark.parametrize("strategy", ["lth", "shapley"])
def test_a_pruning_search_prunes_to_one_operation_per_edge_and_stops_before_its_last_epoch(workspace, strategy):
    from nnunet_workspace import DATASET_ID

    plans_name = f"nnUNetPlans{strategy.upper()}"
    copy_plans(workspace, plans_name)
    base = workspace.train_base("2d")
    env = {"nnUNet_IAC_base": str(base), "nnUNet_IAC_strategy": strategy, "nnUNet_IAC_epochs": "14",
           "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
           "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0",
           "nnUNet_IAC_search_validation": "0"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACSearch", "-p", plans_name,
                  "-device", "cpu", env=env)
    search = workspace.results / f"nnUNetTrainerIACSearch__{plans_name}__2d" / "fold_0"
    history = json.loads((search / "search_history.json").read_text())
    pruning = [row["strategy_fields"] for row in history if row["phase"] == "search"]
    edges = len(history[0]["op_weights"])
    assert pruning[-1]["operations_left"] == edges  # one operation per edge
    assert [p["operations_left"] for p in pruning] == sorted((p["operations_left"] for p in pruning), reverse=True)
    assert len(history) < 14  # stopped early: nothing left to decide
    # pruned operations have weight 0 in the last recorded epoch: at most 'zero' and one other per edge
    assert all(sum(w > 0 for w in row) <= 2 for row in history[-1]["op_weights"])
    assert json.loads((search / "iac_settings.json").read_text())["strategy"] == strategy
    assert Genotype.load(search / "genotype.json").meta["strategy"] == strategy
    state = safe_load(search / "checkpoint_final.pth")["iac"]["strategy"]
    assert state["name"] == strategy and sum(map(sum, state["state"]["pruning"]["mask"])) == 2 * edges  # + 'zero'


@pytest.mark.integration
def test_a_cost_aware_search_measures_its_operations_and_records_its_expected_cost(workspace):
    from nnunet_workspace import DATASET_ID

    copy_plans(workspace, "nnUNetPlansCost")
    env = {"nnUNet_IAC_base": str(workspace.train_base("2d")), "nnUNet_IAC_strategy": "cost",
           "nnUNet_IAC_cost_measure": "parameters", "nnUNet_IAC_epochs": "3", "nnUNet_IAC_warmup_epochs": "1",
           "nnUNet_IAC_iterations_per_epoch": "2", "nnUNet_IAC_val_iterations_per_epoch": "1",
           "nnUNet_IAC_search_validation": "0"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACSearch", "-p", "nnUNetPlansCost",
                  "-device", "cpu", env=env)
    search = workspace.results / "nnUNetTrainerIACSearch__nnUNetPlansCost__2d" / "fold_0"
    costs = json.loads((search / "operation_costs.json").read_text())
    assert costs["key"]["device"] == "cpu" and len(costs["rows"]) > 0
    history = json.loads((search / "search_history.json").read_text())
    assert all(0 < row["strategy_fields"]["expected_cost"] < 1 for row in history if row["phase"] == "search")
    assert Genotype.load(search / "genotype.json").meta["strategy"] == "cost"


@pytest.mark.integration
def test_an_evolutionary_search_over_two_levels_chooses_from_its_front_and_its_cells_retrain_and_predict(
        workspace, monkeypatch, tmp_path):
    """nnUNet_IAC_strategy=nsga2 with nnUNet_IAC_levels=0,1 (issue 18): evolution.json holds the front over
    genotypes and subsets of those levels, and the choice; genotype.json is the choice and records its levels; a
    continued finished search does not evolve again; Stage III (with nnUNet_IAC_levels=0,1 still set, as a shell
    left from the search has it) and nnUNetv2_predict build cells at the chosen levels only, from the plans."""
    from nnunet_workspace import DATASET, DATASET_ID, load_predictor

    plans_name = "nnUNetPlansNSGA"
    copy_plans(workspace, plans_name)
    budget = {"nnUNet_IAC_epochs": "2", "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
              "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_search_validation": "0"}
    env = {**budget, "nnUNet_IAC_base": str(workspace.train_base("2d")), "nnUNet_IAC_strategy": "nsga2",
           "nnUNet_IAC_levels": "0,1", "nnUNet_IAC_cost_measure": "parameters", "nnUNet_IAC_evolution_population": "4",
           "nnUNet_IAC_evolution_generations": "2", "nnUNet_IAC_evolution_batches": "1"}
    search_command = ("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACSearch", "-p", plans_name,
                      "-device", "cpu")
    workspace.run(*search_command, env=env)
    search = workspace.results / f"nnUNetTrainerIACSearch__{plans_name}__2d" / "fold_0"
    record = json.loads((search / "evolution.json").read_text())
    assert record["cost_measure"] == "parameters" and record["evaluations"] == len(record["points"]) >= 4
    chosen = record["points"][record["chosen"]]
    assert record["chosen"] in record["front"]
    genotype = Genotype.load(search / "genotype.json")
    assert {tuple(p["levels"]) for p in record["points"]} <= {(0,), (1,), (0, 1)} and record["points"][0]["levels"] == [0, 1]
    chosen_levels = tuple(chosen["levels"])
    assert genotype == Genotype.from_dict(chosen["genotype"])
    assert genotype.cell_options["levels"] == ("0,1" if chosen_levels == (0, 1) else str(chosen_levels[0]))
    assert 0 <= record["base_dice"] <= 1 and genotype.meta["evolution"]["levels_searched"] == "0,1"
    assert genotype.meta["strategy"] == "nsga2" and genotype.meta["evolution"]["dice"] == chosen["dice"]
    assert safe_load(search / "checkpoint_final.pth")["iac"]["strategy"]["state"]["evolution"] == record
    costs = json.loads((search / "operation_costs.json").read_text())
    assert {row["level"] for row in costs["rows"]} == {0, 1}  # cells at levels 0 and 1 only, so costs there only
    assert {row["operation"] for row in costs["rows"] if row["level"] == 0} >= {"frame", "identity"}

    (search / "evolution.json").unlink()
    workspace.run(*search_command, "--c", env=env)
    assert not (search / "evolution.json").exists()  # finished and evolved: nothing evolved again
    assert Genotype.load(search / "genotype.json") == genotype

    retrain_env = {**budget, "nnUNet_IAC_epochs": "1", "nnUNet_IAC_base": env["nnUNet_IAC_base"],
                   "nnUNet_IAC_genotype": str(search / "genotype.json"), "nnUNet_IAC_levels": "0,1"}
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACRetrain", "-p", plans_name,
                  "-device", "cpu", env=retrain_env)
    model = workspace.results / f"nnUNetTrainerIACRetrain__{plans_name}__2d"
    predictor = load_predictor(workspace, monkeypatch, model)
    assert tuple(predictor.network.decoder.iac_cell_levels) == chosen_levels
    assert len(predictor.network.decoder.iac_cells) == len(chosen_levels)
    out = tmp_path / "predicted"
    workspace.run("nnUNetv2_predict", "-i", str(workspace.root / "raw" / DATASET / "imagesTs"), "-o", str(out), "-d",
                  str(DATASET_ID), "-c", "2d", "-f", "0", "-tr", "nnUNetTrainerIACRetrain", "-p", plans_name,
                  "-device", "cpu", "-npp", "1", "-nps", "1")
    assert len(list(out.glob("*.nii.gz"))) == 2


@pytest.mark.integration
def test_a_branching_search_records_its_merges_and_branched_cells_retrain_and_predict_from_plans(workspace,
                                                                                                   monkeypatch,
                                                                                                   tmp_path):
    """nnUNet_IAC_branching=on (issue 18): the supernet's branch_alpha is trained and checkpointed, the genotype
    records branching; a genotype whose cells take both neighbours (one added, one concatenated) retrains and
    predicts through nnU-Net's commands, rebuilt from the plans."""
    from nnunet_workspace import DATASET, DATASET_ID, load_predictor

    plans_name = "nnUNetPlansBranch"
    copy_plans(workspace, plans_name)
    budget = {"nnUNet_IAC_epochs": "2", "nnUNet_IAC_warmup_epochs": "0", "nnUNet_IAC_iterations_per_epoch": "2",
              "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_search_validation": "0"}
    base = str(workspace.train_base("2d"))
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACSearch", "-p", plans_name,
                  "-device", "cpu", env={**budget, "nnUNet_IAC_base": base, "nnUNet_IAC_branching": "on",
                                         "nnUNet_IAC_init": "small"})
    search = workspace.results / f"nnUNetTrainerIACSearch__{plans_name}__2d" / "fold_0"
    weights = safe_load(search / "checkpoint_final.pth")["network_weights"]
    assert not torch.equal(weights["decoder.iac_architecture.branch_alpha"], torch.ones(2, 3))  # it learned
    searched = json.loads((search / "genotype.json").read_text())
    assert searched["cell_options"]["branching"] == "on"
    branched = tmp_path / "genotype.json"
    branched.write_text(json.dumps({**searched, "branches": {"lower": "add", "higher": "concat"}}))

    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "0", "-tr", "nnUNetTrainerIACRetrain", "-p", plans_name,
                  "-device", "cpu", env={**budget, "nnUNet_IAC_epochs": "1", "nnUNet_IAC_base": base,
                                         "nnUNet_IAC_genotype": str(branched)})
    model = workspace.results / f"nnUNetTrainerIACRetrain__{plans_name}__2d"
    predictor = load_predictor(workspace, monkeypatch, model)
    cells = predictor.network.decoder.iac_cells
    assert all("lower" in cell.branch_reductions for cell in cells)
    assert [cell.concat_slots for cell in cells][:-1] == [("higher",)] * (len(cells) - 1)
    out = tmp_path / "predicted"
    workspace.run("nnUNetv2_predict", "-i", str(workspace.root / "raw" / DATASET / "imagesTs"), "-o", str(out), "-d",
                  str(DATASET_ID), "-c", "2d", "-f", "0", "-tr", "nnUNetTrainerIACRetrain", "-p", plans_name,
                  "-device", "cpu", "-npp", "1", "-nps", "1")
    assert len(list(out.glob("*.nii.gz"))) == 2
