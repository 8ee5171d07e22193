"""benchmarks/iteration_cost.py times the search iteration with the cells' optimizer the search would use: Adas
(one parameter group per cell convolution) or SGD (one group), so the two can be compared in one process."""
import json
import sys

import pytest
import torch

from benchmarks import iteration_cost


@pytest.mark.parametrize("optimizer", ["sgd", "adas"])
def test_iteration_cost_times_the_search_with_the_chosen_cell_optimizer(optimizer, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["iteration_cost", "--batch", "2", "--iterations", "1",
                                      "--cell-optimizer", optimizer])
    iteration_cost.main()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["cell_optimizer"] == optimizer
    assert (result["cell_parameter_groups"] > 1) == (optimizer == "adas")
    assert result["search_iteration_s"] > 0 and result["ratio"] == pytest.approx(
        result["search_iteration_s"] / result["plain_step_s"], rel=0.01)


def run_with_operations(operations, monkeypatch, capsys, *extra) -> dict:
    monkeypatch.setattr(sys, "argv", ["iteration_cost", "--batch", "2", "--iterations", "1",
                                      "--operations", operations, *extra])
    iteration_cost.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_iteration_cost_times_the_supernet_as_a_pruning_search_leaves_it(monkeypatch, capsys):
    """all: every non-zero operation on every edge (14 edges x 7 per cell); one: one per edge (a parameter-free
    one counts on every edge of its node, computed once for all); none: the cells' frame alone. --grouped-only
    computes an operation on every edge of a node where it is left on one."""
    counts = {kind: run_with_operations(kind, monkeypatch, capsys)["computed_edge_operations"]
              for kind in ("all", "one", "none")}
    cells = 3
    assert counts["all"] == cells * 14 * 7
    assert cells * 14 <= counts["one"] < counts["all"]
    assert counts["none"] == 0
    grouped = run_with_operations("one", monkeypatch, capsys, "--grouped-only")
    assert grouped["grouped_only"] and counts["one"] < grouped["computed_edge_operations"] < counts["all"]


def test_operation_masks_leave_zero_and_the_drawn_operation():
    from nnunet_iac.network.builders import implant_search_cells
    from nnunet_iac.network.reference_networks import hippocampus_2d_unet

    supernet = implant_search_cells(hippocampus_2d_unet())
    assert iteration_cost.operation_mask(supernet, "all") is None
    one = iteration_cost.operation_mask(supernet, "one", seed=3)
    two = iteration_cost.operation_mask(supernet, "two", seed=3)
    none = iteration_cost.operation_mask(supernet, "none")
    zero = supernet.decoder.iac_cells[0].operation_names.index("zero")
    assert one.sum(dim=1).tolist() == [2] * one.shape[0] and one[:, zero].all()
    assert two.sum(dim=1).tolist() == [3] * two.shape[0] and two[:, zero].all()
    assert none.sum(dim=1).tolist() == [1] * none.shape[0] and none[:, zero].all()
    assert not torch.equal(one, iteration_cost.operation_mask(supernet, "one", seed=4))
