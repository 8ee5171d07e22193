"""Operation costs and the cost-aware search (issue 18): the table, the differentiable expected cost against a hand
sum, and a penalty that moves alpha toward cheap operations."""
import json

import pytest
import torch
import torch.nn.functional as F

from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import freeze_base, implanted_decoder
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.cost_aware import CostAwareStrategy
from nnunet_iac.search.operation_costs import (COST_FILE, FRAME, TABLE_VERSION, OperationCost, expected_cost,
                                               genotype_costs, level_spatial_sizes, load_or_measure_costs,
                                               operation_cost_vector)
from nnunet_iac.search.strategy import StrategyContext

NAMES = tuple(OPERATIONS)
CPU = torch.device("cpu")


def _supernet(seed=0):
    torch.manual_seed(seed)
    return freeze_base(CostAwareStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False),
                                                        CellOptions(init="small")))


def test_the_cost_table_has_every_operation_at_every_level_and_is_cached(tmp_path):
    network = _supernet()
    rows = load_or_measure_costs(tmp_path, network, (32, 32), CPU)
    levels = len(implanted_decoder(network).iac_cells)
    assert len(rows) == levels * (len(NAMES) + 1)
    by_name = {(r.level, r.operation): r for r in rows}
    for level, size in enumerate(level_spatial_sizes(network, (32, 32))):
        cell = implanted_decoder(network).iac_cells[level]
        width = cell.width
        frame = by_name[level, FRAME]  # the two reductions and the projection, whatever the operations
        assert frame.parameters == sum(p.numel() for m in (cell.reduce_skip, cell.reduce_up, cell.output_projection)
                                       for p in m.parameters())
        assert frame.flops > 0 and frame.latency > 0 and frame.spatial_size == size
        assert by_name[level, "identity"].parameters == 0 and by_name[level, "identity"].flops == 0
        assert by_name[level, "max_pool_3x3"].parameters == 0
        conv = by_name[level, "sep_conv_3x3"]
        assert conv.parameters > 0 and conv.flops > 0 and conv.latency > 0 and conv.spatial_size == size
        assert conv.width == width
    # deeper levels (0 = lowest resolution) see smaller maps
    sizes = level_spatial_sizes(network, (32, 32))
    assert all(a[0] < b[0] for a, b in zip(sizes, sizes[1:]))
    saved = json.loads((tmp_path / COST_FILE).read_text())
    assert saved["key"] == {"patch_size": [32, 32], "device": "cpu", "levels": list(range(levels)),
                            "version": TABLE_VERSION}
    assert load_or_measure_costs(tmp_path, network, (32, 32), CPU) == rows  # read back, not measured again
    del saved["key"]["version"]  # a table from before the frame rows is measured again
    (tmp_path / COST_FILE).write_text(json.dumps({"key": saved["key"], "rows": saved["rows"][:3]}))
    assert len(load_or_measure_costs(tmp_path, network, (32, 32), CPU)) == len(rows)


def _row(level, operation, parameters, latency):
    return OperationCost(level, operation, 8, (4, 4), parameters, 0, latency)


def test_a_genotypes_cost_is_its_operations_and_frame_at_its_levels_by_hand():
    rows = [_row(level, name, p * (level + 1), t * (level + 1)) for level in (0, 1, 2)
            for name, p, t in (("identity", 0, 0.1), ("sep_conv_3x3", 10, 1.0), (FRAME, 100, 2.0))]
    operations = ["sep_conv_3x3", "identity", "sep_conv_3x3"]
    # per level: 2 x sep_conv + identity + frame = (20 + 0 + 100) parameters, (2 + 0.1 + 2) ms, times level + 1
    every = genotype_costs(rows, operations)
    assert every["parameters"] == pytest.approx(120 * (1 + 2 + 3)) and every["latency"] == pytest.approx(4.1 * 6)
    some = genotype_costs(rows, operations, (0, 2))
    assert some["parameters"] == pytest.approx(120 * (1 + 3)) and some["latency"] == pytest.approx(4.1 * 4)
    without_frame = genotype_costs([r for r in rows if r.operation != FRAME], operations, (1,))
    assert without_frame["parameters"] == pytest.approx(40)
    with pytest.raises(KeyError, match="level"):
        genotype_costs(rows, operations, (3,))
    with pytest.raises(KeyError, match="dil_conv_3x3"):
        genotype_costs(rows, ["dil_conv_3x3"])
    # the frame is the same for every architecture: the search's cost vector leaves it out
    vector = operation_cost_vector(rows, ("identity", "sep_conv_3x3"), "parameters")
    assert vector.tolist() == [0.0, 60.0]


def test_expected_cost_is_the_hand_sum_and_differentiable():
    op_weights = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]], requires_grad=True)
    edge_weights = torch.tensor([1.0, 0.5])
    costs = torch.tensor([0.0, 2.0, 4.0])
    hand = (1.0 * (0.5 * 0 + 0.5 * 2) + 0.5 * (0.25 * 2 + 0.75 * 4)) / (1.5 * 4)
    value = expected_cost(op_weights, edge_weights, costs)
    assert float(value.detach()) == pytest.approx(hand)
    value.backward()
    assert torch.allclose(op_weights.grad, torch.tensor([[0.0, 2.0, 4.0], [0.0, 1.0, 2.0]]) / 6)
    assert float(expected_cost(op_weights, edge_weights, torch.zeros(3))) == 0.0
    with pytest.raises(ValueError, match="cost measure"):
        operation_cost_vector([], NAMES, "watts")


def _alpha_after(tmp_path, cost_lambda, steps=15):
    network = _supernet()
    strategy = CostAwareStrategy()
    strategy.setup(network, StrategyContext(CPU, arch_lr=0.05, options={
        "cost_lambda": cost_lambda, "cost_form": "additive", "cost_measure": "parameters"},
        patch_size=(32, 32), output_folder=tmp_path))
    generator = torch.Generator().manual_seed(1)

    def next_batch():
        return {"data": torch.randn(2, 1, 32, 32, generator=generator),
                "target": torch.randint(0, 3, (2, 32, 32), generator=generator)}

    for _ in range(steps):
        strategy.architecture_update(network, F.cross_entropy, next_batch, lambda: None)
    strategy.end_epoch(searching=True)  # as the trainer does before it records the epoch
    fields = strategy.epoch_fields()
    return implanted_decoder(network).iac_architecture.operation_weights().detach(), fields


def test_a_large_cost_weight_moves_alpha_toward_parameter_free_operations(tmp_path):
    free = [NAMES.index(n) for n in ("identity", "max_pool_3x3", "avg_pool_3x3", ZERO)]
    plain, _ = _alpha_after(tmp_path, 0.0)
    paid, fields = _alpha_after(tmp_path, 50.0)
    assert paid[:, free].sum(1).mean() > plain[:, free].sum(1).mean() + 0.05
    assert 0 < fields["expected_cost"] < 1


def test_the_els_form_multiplies_the_loss_and_is_the_plain_loss_at_lambda_zero(tmp_path):
    network = _supernet()
    strategy = CostAwareStrategy()
    options = {"cost_lambda": 0.0, "cost_form": "els", "cost_measure": "flops"}
    strategy.setup(network, StrategyContext(CPU, options=options, patch_size=(32, 32), output_folder=tmp_path))
    loss = torch.tensor(0.7)
    assert float(strategy.penalised(loss).detach()) == pytest.approx(0.7)
    strategy.lam = 0.5
    cost = float(strategy.expected_cost().detach())
    relative = cost * float(strategy.costs.max()) / strategy.cheapest
    assert float(strategy.penalised(loss).detach()) == pytest.approx(0.7 * (1 + 0.5 * torch.log1p(
        torch.tensor(relative)).item()))
    with pytest.raises(ValueError, match="patch_size and output_folder"):
        CostAwareStrategy().setup(network, StrategyContext(CPU, options=options))


def test_cost_settings_are_checked():
    from nnunet_iac.nnunet.settings import IACSettings, SettingsError
    assert IACSettings.from_env({"nnUNet_IAC_strategy": "cost", "nnUNet_IAC_cost_measure": "parameters"}).strategy \
        == "cost"
    for name, value, message in (("cost_measure", "watts", "cost_measure"), ("cost_form", "square", "cost_form"),
                                 ("cost_lambda", "-1", "cost_lambda")):
        with pytest.raises(SettingsError, match=message):
            IACSettings.from_env({f"nnUNet_IAC_{name}": value})
