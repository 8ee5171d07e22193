"""Shapley-guided pruning (nnunet_iac/search/shapley_pruning.py, issue 16): the Monte-Carlo estimator on games with
known values, one operation pruned per edge and estimate, skipped computations, and the checkpointed state."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import freeze_base, implanted_decoder
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.shapley_pruning import ShapleyPruningStrategy, shapley_values
from nnunet_iac.search.strategy import StrategyContext


def test_an_additive_game_gives_every_player_its_own_worth_with_any_number_of_orders():
    worth = {"a": 1.0, "b": -2.0, "c": 0.5}
    values = shapley_values(worth, lambda s: sum(worth[p] for p in s), 1, np.random.default_rng(0))
    assert values == pytest.approx(worth)


def test_a_symmetric_game_splits_the_grand_value_equally_and_the_estimate_converges_on_others():
    few = shapley_values(range(4), lambda s: len(s) ** 2, 3, np.random.default_rng(1))
    assert sum(few.values()) == pytest.approx(16.0)  # efficiency holds for any number of orders
    many = shapley_values(range(4), lambda s: len(s) ** 2, 2000, np.random.default_rng(1))
    assert many == pytest.approx({p: 4.0 for p in range(4)}, abs=0.3)  # symmetry in the limit
    # v = 1 if both 0 and 1 are in: each of them gets 1/2, player 2 nothing (a null player)
    game = lambda s: float({0, 1} <= s)  # noqa: E731
    estimate = shapley_values(range(3), game, 400, np.random.default_rng(2))
    assert estimate[0] == pytest.approx(0.5, abs=0.06) and estimate[2] == 0.0
    assert sum(estimate.values()) == pytest.approx(1.0)
    calls = []
    shapley_values(range(3), lambda s: calls.append(s) or 0.0, 50, np.random.default_rng(3))
    assert len(calls) == len(set(calls)) <= 8  # every coalition's value computed once


def _searching(seed=0):
    torch.manual_seed(seed)
    network = freeze_base(ShapleyPruningStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False),
                                                                CellOptions(init="small")))
    strategy = ShapleyPruningStrategy()
    strategy.probe_cases = 1
    strategy.setup(network, StrategyContext(device=torch.device("cpu"), arch_lr=0.05))
    generator = torch.Generator().manual_seed(seed + 10)

    def next_batch():
        return {"data": torch.randn(2, 1, 32, 32, generator=generator),
                "target": torch.randint(0, 3, (2, 32, 32), generator=generator)}

    strategy.architecture_update(network, F.cross_entropy, next_batch, lambda: None)
    return network, strategy


def test_each_estimate_prunes_the_weakest_operation_of_every_edge_until_one_is_left():
    network, strategy = _searching()
    strategy.permutations = 1  # the estimator itself is tested above; here the pruning around it
    edges = strategy.num_edges
    strategy.end_epoch(searching=False)
    assert strategy.operations_left() == 7 * edges
    for expected in (6,):
        strategy.end_epoch(searching=True)
        assert strategy.epoch_fields()["operations_left"] == expected * edges
        for edge in range(edges):  # the lowest estimate went
            assert not strategy.mask[edge, int(np.nanargmin(strategy.values[edge]))]
    assert strategy.epoch_fields()["shapley_seconds"] >= 0
    for edge in range(edges):  # fast-forward to two operations left on every edge
        strategy.prune(edge, strategy.active(edge)[2:])
    strategy.apply_mask()
    strategy.end_epoch(searching=True)
    assert strategy.finished() and strategy.operations_left() == edges
    kept = implanted_decoder(network).iac_architecture.operation_weights() > 0
    assert int(kept.sum()) == 2 * edges  # one operation and 'zero' per edge


def test_a_continued_search_prunes_as_the_uninterrupted_one():
    network, strategy = _searching()
    strategy.permutations = 1
    strategy.end_epoch(searching=True)
    resumed_network, resumed = _searching(seed=0)
    resumed.load_state_dict(strategy.state_dict())
    assert torch.equal(resumed.mask, strategy.mask)
    assert np.array_equal(np.isnan(resumed.values), np.isnan(strategy.values))
    for a, b in zip(implanted_decoder(resumed_network).iac_cells, implanted_decoder(network).iac_cells):
        assert [g.active for g in a.sources] == [g.active for g in b.sources]
        assert [g.only_on for g in a.sources] == [g.only_on for g in b.sources]
        assert all(torch.equal(g.edge_mask, h.edge_mask) for g, h in zip(a.sources, b.sources))
