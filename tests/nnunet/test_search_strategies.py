"""The search strategies through nnU-Net's own command (issues 16, 18): chosen by nnUNet_IAC_strategy, recorded; the
pruning ones stop once every edge has one operation left, the cost-aware one records its expected cost."""
import json
from pathlib import Path

import pytest

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.nnunet.checkpointing import safe_load


@pytest.mark.integration
@pytest.mark.parametrize("strategy", ["lth", "shapley"])
def test_a_pruning_search_prunes_to_one_operation_per_edge_and_stops_before_its_last_epoch(workspace, strategy):
    from nnunet_workspace import DATASET, DATASET_ID

    plans_name = f"nnUNetPlans{strategy.upper()}"
    preprocessed = Path(workspace.env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    (preprocessed / f"{plans_name}.json").write_text(json.dumps({**plans, "plans_name": plans_name}))
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
    from nnunet_workspace import DATASET, DATASET_ID

    preprocessed = Path(workspace.env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    (preprocessed / "nnUNetPlansCost.json").write_text(json.dumps({**plans, "plans_name": "nnUNetPlansCost"}))
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
