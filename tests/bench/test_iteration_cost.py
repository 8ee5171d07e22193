"""benchmarks/iteration_cost.py times the search iteration with the cells' optimizer the search would use: Adas
(one parameter group per cell convolution) or SGD (one group), so the two can be compared in one process."""
import json
import sys

import pytest

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
