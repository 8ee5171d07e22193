"""``nnunet-iac pareto`` (issue 18): genotypes as points of score and cost, the front, the choice within limits."""
import json

import pytest
import torch

from nnunet_iac.cells.genotype import derive_genotype
from nnunet_iac.cells.operations import OPERATIONS
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.selection.pareto import GenotypePoint, ParetoError, choose, dominates, genotype_point, pareto, pareto_front
from nnunet_iac.tools.cli import main as cli

NAMES = tuple(OPERATIONS)
# per level: (parameters, latency ms) of each operation
COSTS = {"zero": (0, 0.0), "identity": (0, 0.01), "max_pool_3x3": (0, 0.1), "avg_pool_3x3": (0, 0.1),
         "sep_conv_3x3": (100, 1.0), "sep_conv_5x5": (200, 2.0), "dil_conv_3x3": (50, 0.5), "dil_conv_5x5": (90, 0.9)}


def _search(folder, operation, val_loss):
    """A search fold folder whose genotype uses ``operation`` on every chosen edge."""
    folder.mkdir(parents=True)
    topology = CellTopology()
    alpha = torch.zeros(topology.num_edges, len(NAMES))
    alpha[:, NAMES.index(operation)] = 5.0
    genotype = derive_genotype(alpha.softmax(-1), torch.ones(topology.num_edges), topology, NAMES)
    genotype.save(folder / "genotype.json")
    rows = [{"level": level, "operation": name, "width": 8, "spatial_size": [8, 8], "parameters": p, "flops": 0,
             "latency": t} for level in range(2) for name, (p, t) in COSTS.items()]
    (folder / "operation_costs.json").write_text(json.dumps({"key": {}, "rows": rows}))
    history = [{"epoch": 0, "phase": "search", "genotype": genotype.to_dict(), "val_loss": val_loss}]
    (folder / "search_history.json").write_text(json.dumps(history))
    return folder


def test_a_point_sums_the_chosen_operations_costs_over_the_levels(tmp_path):
    point = genotype_point(_search(tmp_path / "a", "sep_conv_3x3", 0.5))
    assert point.added_parameters == 8 * 2 * 100 and point.latency_ms == pytest.approx(8 * 2 * 1.0)
    assert point.score == -0.5 and "val_search loss" in point.score_source


def test_the_front_drops_dominated_points_and_the_choice_respects_the_limits():
    def p(name, score, params, latency):
        return GenotypePoint(name, score, "s", params, latency, {})

    a, b, c, d = p("a", 0.9, 300, 3.0), p("b", 0.8, 100, 1.0), p("c", 0.7, 200, 2.0), p("d", 0.9, 300, 3.0)
    assert dominates(b, c) and not dominates(a, b) and not dominates(a, d)
    front = pareto_front([a, b, c, d])
    assert [x.name for x in front] == ["a", "b", "d"]
    assert choose(front).name == "a"
    assert choose(front, max_latency_ms=2.0).name == "b"
    with pytest.raises(ParetoError, match="cheapest is b"):
        choose(front, max_added_parameters=50)


def test_the_command_writes_the_front_and_names_the_choice(tmp_path, capsys):
    searches = [_search(tmp_path / name, op, loss) for name, op, loss in
                (("cheap", "identity", 0.60), ("mid", "dil_conv_3x3", 0.50), ("dear", "sep_conv_5x5", 0.55))]
    out = tmp_path / "front"
    assert cli(["pareto", *map(str, searches), "-o", str(out), "--max-latency-ms", "10"]) == 0
    record = json.loads((out / "pareto.json").read_text())
    assert set(record["front"]) == {str(searches[0]), str(searches[1])}  # 'dear' costs more and scores less
    assert record["chosen"] == str(searches[1])
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "chosen" in capsys.readouterr().out


def test_a_search_without_a_cost_table_is_refused_with_the_fix(tmp_path):
    folder = _search(tmp_path / "a", "identity", 0.5)
    (folder / "operation_costs.json").unlink()
    with pytest.raises(ParetoError, match="nnUNet_IAC_strategy=cost"):
        pareto([folder], tmp_path / "out")


def test_an_evolutionary_search_gives_every_genotype_it_scored(tmp_path):
    folder = _search(tmp_path / "evolved", "identity", 0.5)
    genotypes = [json.loads((_search(tmp_path / op, op, 0.5) / "genotype.json").read_text())
                 for op in ("sep_conv_3x3", "dil_conv_3x3", "sep_conv_5x5")]
    points = [{"genotype": g, "dice": d, "parameters": p, "flops": 0, "latency": t}
              for g, d, p, t in zip(genotypes, (0.80, 0.78, 0.79), (1600, 800, 3200), (16.0, 8.0, 32.0))]
    (folder / "evolution.json").write_text(json.dumps({"points": points, "front": [0, 1], "chosen": 0}))
    record = pareto([folder], tmp_path / "out", max_latency_ms=10.0)
    assert [p["name"] for p in record["points"]] == [f"{folder}#{i}" for i in range(3)]
    assert record["front"] == [f"{folder}#0", f"{folder}#1"]  # the 5x5 one is beaten on every count
    assert record["chosen"] == f"{folder}#1" and "pseudo-Dice" in record["points"][0]["score_source"]
