"""PC-DARTS behind the search-strategy seam (issue 15): what the trainer relies on, without nnU-Net."""
import copy

import torch
import torch.nn.functional as F

from nnunet_iac.cells.genotype import derive_genotype
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import base_parameters, cell_parameters, freeze_base
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.strategy import SearchStrategy, StrategyContext

CPU = StrategyContext(device=torch.device("cpu"), arch_lr=0.05)


def _supernet(seed=0):
    torch.manual_seed(seed)
    network = freeze_base(PCDartsStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False),
                                                         CellOptions(init="small")))
    return network


def _batches(seed=1):
    generator = torch.Generator().manual_seed(seed)

    def next_batch():
        x = torch.randn(2, 1, 32, 32, generator=generator)
        return {"data": x, "target": torch.randint(0, 3, (2, 32, 32), generator=generator)}
    return next_batch


def _loss(output, target):
    return F.cross_entropy(output, target)


def _ready(network):
    strategy = PCDartsStrategy()
    strategy.setup(network, CPU)
    return strategy


def test_an_update_moves_alpha_and_beta_only_and_reports_gradients_once():
    network = _supernet()
    strategy = _ready(network)
    cells = [p.detach().clone() for p in cell_parameters(network)]
    base = [p.detach().clone() for p in base_parameters(network)]
    arch = [p.detach().clone() for p in strategy.architecture_parameters()]
    seen = []
    loss = strategy.architecture_update(network, _loss, _batches(), lambda: seen.append(
        [p.grad is not None for p in strategy.architecture_parameters()]))
    assert torch.isfinite(torch.tensor(loss)) and seen == [[True, True]]
    assert all(not torch.equal(a, p) for a, p in zip(arch, strategy.architecture_parameters()))
    assert all(torch.equal(c, p) for c, p in zip(cells, cell_parameters(network)))
    assert all(torch.equal(b, p) for b, p in zip(base, base_parameters(network)))
    # the cell weights can learn again after the update (the step gave them back their requires_grad)
    assert all(p.requires_grad for p in cell_parameters(network))


def test_current_genotype_is_the_derivation_of_alpha_and_beta_and_names_the_strategy():
    network = _supernet()
    strategy = _ready(network)
    strategy.architecture_update(network, _loss, _batches(), lambda: None)
    options = {"k": 4, "width_divisor": 4, "mode": "residual", "init": "small"}
    view = strategy.current({"levels": 3}, options)
    architecture = network.decoder.iac_architecture
    expected = derive_genotype(*architecture(), architecture.topology, view.operation_names)
    assert view.genotype.nodes == expected.nodes
    assert view.genotype.meta == {"levels": 3, "strategy": "pc_darts"}
    # options a caller does not give are the values genotypes written before them meant (levels all, no branching)
    assert view.genotype.cell_options == {**options, "levels": "all", "branching": "off"}
    assert tuple(view.genotype.search_space) == view.operation_names


def test_a_restored_strategy_continues_exactly_like_the_uninterrupted_one():
    """The optimizer state (Adam moments) must come back with --c, or the continued search differs."""
    network = _supernet()
    strategy = _ready(network)
    batches = _batches()
    strategy.architecture_update(network, _loss, batches, lambda: None)
    resumed_network = copy.deepcopy(network)
    resumed = _ready(resumed_network)
    resumed.load_state_dict(copy.deepcopy(strategy.state_dict()))
    batch = batches()
    strategy.architecture_update(network, _loss, lambda: batch, lambda: None)
    resumed.architecture_update(resumed_network, _loss, lambda: batch, lambda: None)
    for a, b in zip(strategy.architecture_parameters(), resumed.architecture_parameters()):
        assert torch.equal(a, b)
    fresh_network = copy.deepcopy(resumed_network)
    fresh = _ready(fresh_network)
    fresh.load_state_dict({})  # a checkpoint without strategy state keeps the fresh optimizer
    assert not fresh.optimizer.state


def test_the_seam_is_abstract():
    """A strategy that leaves out part of the contract cannot be instantiated (the trainer relies on all of it)."""
    class Partial(SearchStrategy):
        name = "partial"

        @staticmethod
        def build_supernet(base, options):
            return base

    try:
        Partial()
    except TypeError as e:
        assert "architecture_update" in str(e)
    else:
        raise AssertionError("an incomplete strategy was instantiated")
