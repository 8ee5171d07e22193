"""Progressive operation pruning (nnunet_iac/search/progressive_pruning.py, issue 16): the JS estimator, the
masks, pruned operations not computed, the pruning schedule, the checkpointed state and the strategy setting."""
import math

import numpy as np
import pytest
import torch

from nnunet_iac.cells.architecture_parameters import ArchitectureParameters
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.cells.search_cell import PartialChannelEdges
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import freeze_base, implanted_decoder
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.progressive_pruning import ProgressivePruningStrategy, js_divergence, keep_top_half
from nnunet_iac.search.strategy import StrategyContext

NAMES = tuple(OPERATIONS)
NON_ZERO = [i for i, name in enumerate(NAMES) if name != ZERO]


def test_js_divergence_is_zero_for_equal_one_for_disjoint_and_known_in_between():
    assert js_divergence([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    # m = (0.75, 0.25): KL(p||m) = log2(4/3), KL(q||m) = (log2(2/3) + 1) / 2
    expected = (math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2
    assert js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(expected)
    assert js_divergence([2, 6], [1, 3]) == pytest.approx(0.0, abs=1e-12)  # normalised first


def test_keep_top_half_rounds_up_and_breaks_ties_by_index():
    importance = np.array([0.0, 0.1, 0.3, 0.3, 0.05, 0.2, 0.02, 0.03])
    assert keep_top_half(importance, [1, 2, 3, 4, 5, 6, 7]) == [1, 2, 3, 5]
    assert keep_top_half(importance, [2, 3]) == [2]
    assert keep_top_half(importance, [6]) == [6]


def test_a_mask_zeroes_the_weights_of_pruned_operations_and_renormalises_the_rest():
    architecture = ArchitectureParameters(CellTopology(), len(NAMES))
    with torch.no_grad():
        architecture.alpha.copy_(torch.randn_like(architecture.alpha))
    mask = torch.ones_like(architecture.alpha, dtype=torch.bool)
    mask[0, 2:] = False
    architecture.set_operation_mask(mask)
    weights = architecture.operation_weights()
    assert torch.all(weights[0, 2:] == 0) and torch.allclose(weights.sum(1), torch.ones(weights.shape[0]))
    assert torch.allclose(weights[1:], torch.softmax(architecture.alpha[1:], -1))
    with pytest.raises(ValueError, match="at least one operation"):
        architecture.set_operation_mask(torch.zeros_like(mask))
    with pytest.raises(ValueError, match="does not fit"):
        architecture.set_operation_mask(mask[:3])
    assert "operation_mask" not in architecture.state_dict()  # checkpoints of unpruned searches keep their keys


def test_an_operation_pruned_from_every_edge_of_a_node_is_not_computed_and_the_output_is_unchanged():
    torch.manual_seed(0)
    edges = PartialChannelEdges(LayerSpec.from_encoder(tiny_plain_unet(2).encoder), 8, NAMES, partial_k=2, num_edges=3)
    x = torch.randn(2, 8, 16, 16)
    weights = torch.softmax(torch.randn(3, len(NAMES)), -1)
    pruned = NAMES.index("sep_conv_5x5")
    weights[:, pruned] = 0
    reference = edges(x, weights)
    calls = []
    edges.ops[pruned].register_forward_hook(lambda *args: calls.append(1))
    edges.set_active([i for i in NON_ZERO if i != pruned])
    out = edges(x, weights)
    assert not calls and all(torch.allclose(a, b) for a, b in zip(out, reference))
    sum(o.sum() for o in out).backward()
    assert all(p.grad is None for p in edges.ops[pruned].parameters())
    assert any(p.grad is not None for p in edges.ops[NAMES.index("sep_conv_3x3")].parameters())


def _supernet(seed=0):
    torch.manual_seed(seed)
    network = freeze_base(ProgressivePruningStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False),
                                                                    CellOptions()))
    strategy = ProgressivePruningStrategy()
    strategy.setup(network, StrategyContext(device=torch.device("cpu"), arch_lr=0.05))
    return network, strategy


def _set_alpha(network, alpha):
    with torch.no_grad():
        implanted_decoder(network).iac_architecture.alpha.copy_(alpha)


def test_a_steady_alpha_prunes_every_edge_to_its_strongest_operation_in_three_halvings():
    network, strategy = _supernet()
    alpha = torch.randn_like(implanted_decoder(network).iac_architecture.alpha, generator=torch.Generator().manual_seed(3))
    _set_alpha(network, alpha)
    strategy.end_epoch(searching=False)  # warm-up: nothing happens
    assert strategy.search_epochs == 0 and strategy.mask.all()
    left = []
    for epoch in range(1, 9):
        strategy.end_epoch(searching=True)
        left.append(int(strategy.epoch_fields().get("operations_left", 0)))
        if strategy.finished():
            break
    edges = alpha.shape[0]
    # epoch 1 has no previous distribution; stable after 2 and 3 -> prune at 3 (7 -> 4), again at 5 (-> 2) and 7 (-> 1)
    assert left == [7 * edges, 7 * edges, 4 * edges, 4 * edges, 2 * edges, 2 * edges, edges]
    assert strategy.finished()
    best = alpha[:, NON_ZERO].argmax(1)
    for edge in range(edges):
        assert strategy.active(edge) == [NON_ZERO[int(best[edge])]]
    # what is left on each edge: its strongest operation and 'zero' (never computed; its alpha scales the edge)
    weights = implanted_decoder(network).iac_architecture.operation_weights()
    kept = weights[torch.arange(edges), torch.tensor(NON_ZERO)[best]] + weights[:, NAMES.index(ZERO)]
    assert torch.allclose(kept, torch.ones(edges))
    for cell in implanted_decoder(network).iac_cells:  # the cells compute only what is left on their edges
        assert all(len(group.active) <= group.num_edges for group in cell.sources)


def test_an_alpha_that_keeps_changing_is_not_pruned():
    network, strategy = _supernet()
    generator = torch.Generator().manual_seed(4)
    for _ in range(6):
        _set_alpha(network, 3 * torch.randn(implanted_decoder(network).iac_architecture.alpha.shape, generator=generator))
        strategy.end_epoch(searching=True)
    assert strategy.mask.all() and strategy.epoch_fields()["js_median"] > strategy.js_threshold


def test_a_continued_search_prunes_exactly_as_the_uninterrupted_one():
    network, strategy = _supernet()
    alpha = torch.randn_like(implanted_decoder(network).iac_architecture.alpha, generator=torch.Generator().manual_seed(5))
    _set_alpha(network, alpha)
    for _ in range(4):
        strategy.end_epoch(searching=True)
    saved = strategy.state_dict()
    resumed_network, resumed = _supernet(seed=1)
    _set_alpha(resumed_network, alpha)
    resumed.load_state_dict(saved)
    assert torch.equal(resumed.mask, strategy.mask) and implanted_decoder(resumed_network).iac_architecture.masked
    for a, b in zip(implanted_decoder(resumed_network).iac_cells, implanted_decoder(network).iac_cells):
        assert [g.active for g in a.sources] == [g.active for g in b.sources]
        assert [g.only_on for g in a.sources] == [g.only_on for g in b.sources]
        assert all(torch.equal(g.edge_mask, h.edge_mask) for g, h in zip(a.sources, b.sources))
    for _ in range(4):
        strategy.end_epoch(searching=True)
        resumed.end_epoch(searching=True)
        assert torch.equal(resumed.mask, strategy.mask)
        assert resumed.epoch_fields() == pytest.approx(strategy.epoch_fields(), nan_ok=True)
    assert strategy.finished() and resumed.finished()


def test_the_strategy_setting_chooses_the_strategy_and_a_variant_with_its_own_is_not_overridden(monkeypatch):
    from nnunet_iac.nnunet.settings import IACSettings, SettingsError
    from nnunet_iac.search.pc_darts import PCDartsStrategy
    from nnunet_iac.trainers.nnUNetTrainerIACSearch import nnUNetTrainerIACSearch

    for name in [n for n in __import__("os").environ if n.startswith("nnUNet_IAC_")]:
        monkeypatch.delenv(name)
    assert nnUNetTrainerIACSearch.strategy_class() is PCDartsStrategy
    monkeypatch.setenv("nnUNet_IAC_strategy", "lth")
    assert nnUNetTrainerIACSearch.strategy_class() is ProgressivePruningStrategy
    monkeypatch.setenv("nnUNet_IAC_strategy", "darts")
    with pytest.raises(SettingsError, match="nnUNet_IAC_strategy='darts'.*pcdarts, lth"):
        IACSettings.from_env()

    class Own(nnUNetTrainerIACSearch):
        search_strategy_class = PCDartsStrategy

    monkeypatch.setenv("nnUNet_IAC_strategy", "lth")
    with pytest.raises(SettingsError, match="its own strategy"):
        Own.strategy_class()
    monkeypatch.delenv("nnUNet_IAC_strategy")
    assert Own.strategy_class() is PCDartsStrategy
