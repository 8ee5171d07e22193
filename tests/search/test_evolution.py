"""The evolutionary search's parts (issue 18): a genotype's one-hot architecture on the supernet, the variation
operators, the pseudo-Dice fitness, the choice from the front, and the strategy end to end on a tiny network."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import cells_at, freeze_base, implanted_decoder
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.evolution import EVOLUTION_FILE, EvolutionStrategy, choose_from_front, pseudo_dice
from nnunet_iac.search.genotype_operators import crossover, features, mutate
from nnunet_iac.search.nsga2 import dominates
from nnunet_iac.search.one_hot import genotype_forward, one_hot_weights
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.placed_genotype import (PlacedGenotype, crossover_placed, mutate_placed, placed_features,
                                               random_levels)
from nnunet_iac.search.random_genotype import random_genotype
from nnunet_iac.search.strategy import StrategyContext

NAMES = tuple(OPERATIONS)
CPU = torch.device("cpu")
TOPOLOGY = CellTopology()


def _genotype(seed=0) -> Genotype:
    template = Genotype(nodes=((("identity", 0), ("identity", 1)), (("identity", 0), ("identity", 1)),
                               (("identity", 0), ("identity", 1)), (("identity", 0), ("identity", 1))),
                        concat=TOPOLOGY.concat_nodes)
    return replace(random_genotype(template, seed), meta={})


def _supernet(seed=0):
    torch.manual_seed(seed)
    network = EvolutionStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False), CellOptions(init="small"))
    return freeze_base(network).eval()


def test_one_hot_weights_put_one_on_each_chosen_edge_and_its_operation_only():
    genotype = Genotype(nodes=((("sep_conv_3x3", 0), ("identity", 1)), (("max_pool_3x3", 1), ("dil_conv_3x3", 2)),
                               (("identity", 0), ("identity", 3)), (("avg_pool_3x3", 4), ("sep_conv_5x5", 2))),
                        concat=TOPOLOGY.concat_nodes)
    op_weights, edge_weights = one_hot_weights(genotype, TOPOLOGY, NAMES)
    assert op_weights.shape == (14, len(NAMES)) and edge_weights.shape == (14,)
    # node 3 (index 1) has edges 2, 3, 4 from sources 0, 1, 2: source 1 -> row 3, source 2 -> row 4
    assert op_weights[3, NAMES.index("max_pool_3x3")] == 1 and op_weights[4, NAMES.index("dil_conv_3x3")] == 1
    assert edge_weights.tolist() == [1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1]
    assert op_weights.sum() == 8 and (op_weights.sum(dim=1) == edge_weights).all()
    with pytest.raises(GenotypeError, match="lacks"):
        one_hot_weights(genotype, TOPOLOGY, tuple(n for n in NAMES if n != "sep_conv_5x5"))
    with pytest.raises(GenotypeError, match="intermediate nodes"):
        one_hot_weights(genotype, CellTopology(num_nodes=3, concat_last=3), NAMES)


def test_genotype_forward_computes_only_the_genotypes_operations_and_restores_the_supernet():
    network = _supernet()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        before = network(x)
    genotype = Genotype(nodes=((("identity", 0), ("identity", 1)),) * 4, concat=TOPOLOGY.concat_nodes)
    called = []
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: called.append(name))
             for name, module in network.named_modules() if ".ops." in name and name.count(".") == 6]
    with torch.no_grad(), genotype_forward(network, genotype):
        first = network(x)
        again = network(x)
    computed = {name.rsplit(".", 1)[-1] for name in called}
    identity = str(NAMES.index("identity"))
    assert computed == {identity}  # no other operation of the space ran
    assert torch.equal(first, again) and not torch.allclose(first, before)
    called.clear()
    with torch.no_grad():
        after = network(x)
    assert torch.equal(after, before)  # alpha, beta and the computed operations are the supernet's again
    assert len({name.rsplit(".", 1)[-1] for name in called}) == len([n for n in NAMES if n != ZERO])
    for hook in hooks:
        hook.remove()
    assert implanted_decoder(network).iac_architecture.fixed is None


def test_mutation_and_crossover_breed_valid_genotypes_of_the_space():
    rng = np.random.default_rng(0)
    space = [n for n in NAMES if n != ZERO]
    parents = [_genotype(1), _genotype(2)]
    children = set()
    for _ in range(200):
        child = mutate(crossover(*parents, rng), rng, NAMES)
        for node, inputs in enumerate(child.nodes):
            sources = [src for _, src in inputs]
            assert len(inputs) == 2 and len(set(sources)) == 2 and sources == sorted(sources)
            assert all(src in TOPOLOGY.node_inputs(node) for src in sources)
            assert all(op in space for op, _ in inputs)
        assert child.concat == parents[0].concat
        children.add(child)
    assert len(children) > 50  # variation, not one child over and over
    one = mutate(parents[0], np.random.default_rng(3), NAMES)
    assert sum(a != b for n, m in zip(one.nodes, parents[0].nodes) for a, b in zip(n, m)) == 1
    crossed = crossover(parents[0], parents[1], np.random.default_rng(4))
    assert all(node in (a, b) for node, a, b in zip(crossed.nodes, parents[0].nodes, parents[1].nodes))
    vector = features(parents[0], NAMES)
    assert vector.shape == (14 * len(NAMES),) and vector.sum() == 8


def test_placed_operators_keep_a_non_empty_subset_of_the_levels_and_move_it():
    rng = np.random.default_rng(0)
    levels = (0, 1, 2, 3)
    parents = [PlacedGenotype(_genotype(1), (0, 1)), PlacedGenotype(_genotype(2), (3,))]
    seen, moved_levels, moved_genotype = set(), 0, 0
    for _ in range(300):
        child = mutate_placed(crossover_placed(*parents, rng), rng, NAMES, levels)
        assert child.levels and set(child.levels) <= set(levels) and list(child.levels) == sorted(set(child.levels))
        seen.add(child.levels)
    assert len(seen) >= 8  # the subsets vary, not only the parents' two
    for _ in range(200):
        child = mutate_placed(parents[1], rng, NAMES, levels)
        moved_levels += child.levels != parents[1].levels
        moved_genotype += child.genotype != parents[1].genotype
        assert (child.levels != parents[1].levels) != (child.genotype != parents[1].genotype)  # one or the other
    assert 20 < moved_levels < 100 and moved_genotype > 100
    fixed = [mutate_placed(parents[0], rng, NAMES, ()) for _ in range(50)]  # levels not evolved
    assert all(child.levels == (0, 1) for child in fixed)
    assert all(random_levels(levels, rng) for _ in range(100))
    vector = placed_features(parents[0], NAMES, levels)
    assert vector.shape == (14 * len(NAMES) + 4,) and vector[-4:].tolist() == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="non-empty"):
        PlacedGenotype(_genotype(1), ())


def test_cells_at_some_levels_compute_what_a_network_without_the_others_computes():
    network = _supernet()
    x = torch.randn(2, 1, 32, 32)
    decoder = implanted_decoder(network)
    with torch.no_grad():
        every = network(x)
        with cells_at(network, (0,)):
            only_first = network(x)
        with cells_at(network, ()):
            none = network(x)
        assert torch.equal(network(x), every)  # the cells are back
        for cell in list(decoder.iac_cells)[1:]:
            cell.zero_output()  # residual mode: a zero output is no cell
        assert torch.allclose(network(x), only_first, atol=1e-6) and not torch.allclose(only_first, every)
        decoder.iac_cells[0].zero_output()
        assert torch.allclose(network(x), none, atol=1e-6)
    with pytest.raises(ValueError, match="no cell"):
        with cells_at(network, (7,)):
            pass


def test_pseudo_dice_sums_counts_over_batches_before_averaging_classes():
    outputs = [{"tp_hard": [1, 0], "fp_hard": [1, 0], "fn_hard": [0, 0]},
               {"tp_hard": [3, 2], "fp_hard": [0, 2], "fn_hard": [1, 0]}]
    # class 1: tp 4, fp 1, fn 1 -> 8/10; class 2: tp 2, fp 2, fn 0 -> 4/6
    assert pseudo_dice(outputs) == pytest.approx((0.8 + 4 / 6) / 2)
    assert pseudo_dice([{"tp_hard": [2, 0], "fp_hard": [0, 0], "fn_hard": [0, 0]}]) == pytest.approx(1.0)
    assert pseudo_dice([{"tp_hard": [0], "fp_hard": [0], "fn_hard": [0]}]) == 0.0


def test_the_choice_is_the_cheapest_within_the_tolerance_of_the_fronts_best():
    dice = [0.90, 0.895, 0.88, 0.91]
    cost = [5.0, 3.0, 1.0, 9.0]
    front = [0, 1, 2, 3]
    assert choose_from_front(dice, cost, front, 0.0) == 3
    assert choose_from_front(dice, cost, front, 0.01) == 0
    assert choose_from_front(dice, cost, front, 0.02) == 1
    assert choose_from_front(dice, cost, front, 1.0) == 2
    assert choose_from_front(dice, cost, [0, 1], 0.0) == 0  # the best of the front, not of all points


_OPTIONS = {"k": 4, "width_divisor": 4, "mode": "residual", "init": "small", "levels": "all", "branching": "off"}


class _Trainer:
    """The strategy's view of nnU-Net: a validation step giving tp/fp/fn of the argmax against the target."""

    def __init__(self, network):
        self.network = network

    def validation_step(self, batch):
        with torch.no_grad():
            predicted = self.network(batch["data"]).argmax(1)
        target = batch["target"][:, 0]
        tp = [int(((predicted == c) & (target == c)).sum()) for c in (1, 2)]
        fp = [int(((predicted == c) & (target != c)).sum()) for c in (1, 2)]
        fn = [int(((predicted != c) & (target == c)).sum()) for c in (1, 2)]
        return {"tp_hard": tp, "fp_hard": fp, "fn_hard": fn}


def test_the_strategy_evolves_a_front_once_and_reports_the_chosen_genotype(tmp_path):
    network = _supernet()
    options = {**_OPTIONS, "seed": 7, "evolution_population": 6, "evolution_generations": 3, "evolution_batches": 2,
               "evolution_tolerance": 0.0, "cost_measure": "parameters", "evolution_levels": "on"}
    strategy = EvolutionStrategy()
    strategy.setup(network, StrategyContext(CPU, 0.0, options=options, patch_size=(32, 32), output_folder=tmp_path))
    generator = torch.Generator().manual_seed(0)
    batches = iter([{"data": torch.randn(2, 1, 32, 32, generator=generator),
                     "target": torch.randint(0, 3, (2, 1, 32, 32), generator=generator)} for _ in range(2)])
    trainer = _Trainer(network)
    strategy.end_search(trainer.validation_step, lambda: next(batches))
    record = json.loads((tmp_path / EVOLUTION_FILE).read_text())
    assert record == strategy.result
    points = record["points"]
    assert record["evaluations"] == len(points) >= 6 and record["generations"] == 3
    assert all(0 <= p["dice"] <= 1 and p["parameters"] >= 0 for p in points)
    every_level = list(implanted_decoder(network).iac_cell_levels)
    assert points[0]["levels"] == every_level and len({tuple(p["levels"]) for p in points}) > 1  # where, too
    assert 0 <= record["base_dice"] <= 1 and record["levels_searched"] == "all"
    objectives = [(1 - p["dice"], p["parameters"]) for p in points]
    front = record["front"]
    assert all(not any(dominates(objectives[j], objectives[i]) for j in range(len(points))) for i in front)
    assert all(any(dominates(objectives[j], objectives[i]) for j in front) for i in set(range(len(points))) - set(front))
    chosen = points[record["chosen"]]
    assert record["derived"] == 0 and Genotype.from_dict(points[0]["genotype"]) == (
        PCDartsStrategy.current(strategy, {}, _OPTIONS).genotype)  # alpha/beta's genotype is scored first
    assert record["chosen"] in front and chosen["dice"] == max(points[i]["dice"] for i in front)
    view = strategy.current({"run": 1}, _OPTIONS)
    assert view.genotype == Genotype.from_dict(chosen["genotype"])
    assert view.genotype.meta["strategy"] == "nsga2" and view.genotype.meta["evolution"]["dice"] == chosen["dice"]
    assert view.genotype.cell_options["init"] == "small"
    assert view.genotype.cell_options["levels"] == (
        "all" if chosen["levels"] == every_level else ",".join(map(str, chosen["levels"])))
    for point in points:  # every point retrains as it was scored: its levels are in its genotype's cell options
        levels = Genotype.from_dict(point["genotype"]).cell_options["levels"]
        assert levels == ("all" if point["levels"] == every_level else ",".join(map(str, point["levels"])))
    # once evolved, it is state: a continued strategy does not evolve again (no batch is drawn)
    resumed = EvolutionStrategy()
    resumed.setup(network, StrategyContext(CPU, 0.0, options=options, patch_size=(32, 32), output_folder=tmp_path))
    resumed.load_state_dict(strategy.state_dict())
    resumed.end_search(trainer.validation_step, lambda: pytest.fail("a continued, evolved search drew a batch"))
    assert resumed.result == record


def test_genotype_forward_restores_a_pruned_supernets_edge_masks():
    """A pruning search's mask (some operations left on some edges of a node) is the supernet's again afterwards,
    with the same edges computed alone."""
    from nnunet_iac.network.implant import mask_operations
    network = _supernet()
    mask = torch.ones(TOPOLOGY.num_edges, len(NAMES), dtype=torch.bool)
    mask[::2, NAMES.index("sep_conv_3x3")] = False
    mask[1::3, NAMES.index("dil_conv_5x5")] = False
    mask_operations(network, mask)
    cells = implanted_decoder(network).iac_cells
    before = [[(g.edge_mask, dict(g.only_on)) for g in cell.sources] for cell in cells]
    assert any(g.only_on for cell in cells for g in cell.sources)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        reference = network(x)
        with genotype_forward(network, _genotype()):
            network(x)
        after = network(x)
    assert torch.equal(after, reference)
    for cell, saved in zip(cells, before):
        for g, (edge_mask, only_on) in zip(cell.sources, saved):
            assert torch.equal(g.edge_mask, edge_mask) and g.only_on == only_on
