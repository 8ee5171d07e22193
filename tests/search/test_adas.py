"""Adas for the cell weights (nnunet_iac/search/adas.py, issue 17): the rate update by hand, the SGD step it drives,
the groups over a supernet, and the state a checkpoint carries."""
import copy

import pytest
import torch
from torch import nn

from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import cell_parameters
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.adas import (ADAS_MIN_LR, MODULE_KEY, AdasScheduler, adas_for_cells, adas_parameter_groups,
                                    adas_rate)
from nnunet_iac.search.cell_probing import cell_weights
from nnunet_iac.search.pc_darts import PCDartsStrategy


def test_the_rate_follows_the_gain_change_with_the_scheduler_beta_and_never_goes_below_the_floor():
    assert adas_rate(0.1, gain=0.30, previous_gain=0.20, beta=0.8, zeta=1.0) == pytest.approx(0.08 + 0.10)
    assert adas_rate(0.1, gain=0.20, previous_gain=0.20, beta=0.8, zeta=1.0) == pytest.approx(0.08)
    assert adas_rate(0.1, gain=0.25, previous_gain=0.20, beta=0.9, zeta=0.5) == pytest.approx(0.09 + 0.025)
    assert adas_rate(0.01, gain=0.0, previous_gain=0.5, beta=0.8, zeta=1.0) == ADAS_MIN_LR


GAINS = [{"a": 0.1, "b": 0.1}, {"a": 0.3, "b": 0.1}, {"a": 0.3, "b": 0.05}]


def _toy(first_epoch=0):
    """Two 'layers' in Adas groups and one other parameter, with gains given by hand per epoch (the weights at
    the start of epoch ``first_epoch`` onwards, as a run continued there would probe them)."""
    a, b, other = (nn.Parameter(torch.ones(2)) for _ in range(3))
    groups = [{"params": [a], MODULE_KEY: "a", "lr": 0.1, "adas_gain": None, "adas_epoch": -1},
              {"params": [b], MODULE_KEY: "b", "lr": 0.1, "adas_gain": None, "adas_epoch": -1},
              {"params": [other], MODULE_KEY: None, "lr": 0.1, "adas_gain": None, "adas_epoch": -1}]
    optimizer = torch.optim.SGD(groups, 0.1, momentum=0.9)
    gains = iter(GAINS[first_epoch:])
    calls = []

    def next_gains():
        calls.append(1)
        return next(gains)

    return (a, b, other), optimizer, AdasScheduler(optimizer, next_gains, beta=0.8, zeta=1.0), calls


def test_each_epoch_start_moves_every_layer_by_its_own_gain_and_the_rest_by_their_mean():
    (a, b, other), optimizer, scheduler, calls = _toy()
    scheduler.step(0)  # records the starting gains, rates unchanged
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.1, 0.1]
    scheduler.step(1)
    assert scheduler.rates() == pytest.approx({"a": 0.08 + 0.2, "b": 0.08})
    assert optimizer.param_groups[2]["lr"] == pytest.approx((0.28 + 0.08) / 2)
    scheduler.step(1)  # the same epoch again (nnU-Net steps once per epoch; a repeat must not move anything)
    assert len(calls) == 2 and scheduler.rates() == pytest.approx({"a": 0.28, "b": 0.08})
    # the SGD step it drives, by hand: first step, momentum buffer = gradient, p -= lr * g
    for p, g in ((a, 1.0), (b, 2.0), (other, -1.0)):
        p.grad = torch.full_like(p, g)
    optimizer.step()
    assert torch.allclose(a, torch.full((2,), 1 - 0.28 * 1.0))
    assert torch.allclose(b, torch.full((2,), 1 - 0.08 * 2.0))
    assert torch.allclose(other, torch.full((2,), 1 + 0.18 * 1.0))
    scheduler.step(2)  # b lost gain: 0.8 * 0.08 - 0.05
    assert scheduler.rates()["b"] == pytest.approx(max(ADAS_MIN_LR, 0.064 - 0.05))


def test_gains_offered_for_an_epoch_replace_its_probe_once_and_only_for_that_epoch():
    _, _, scheduler, calls = _toy()
    scheduler.step(0)
    scheduler.offer(1, GAINS[1])  # what the trainer probed at the end of epoch 0 for probe_history.json
    scheduler.step(1)
    assert len(calls) == 1 and scheduler.rates() == pytest.approx({"a": 0.08 + 0.2, "b": 0.08})
    scheduler.offer(5, {"a": 9.0, "b": 9.0})  # for another epoch: not used, epoch 2 probes itself
    scheduler.step(2)
    assert len(calls) == 2 and scheduler.rates()["a"] == pytest.approx(0.8 * 0.28)


def test_the_optimizer_state_carries_gains_and_rates_so_a_continued_run_repeats_the_uninterrupted_one():
    _, optimizer, scheduler, _ = _toy()
    scheduler.step(0)
    scheduler.step(1)
    saved = copy.deepcopy(optimizer.state_dict())
    scheduler.step(2)
    uninterrupted = [g["lr"] for g in optimizer.param_groups]

    _, restored, continued, calls = _toy(first_epoch=2)
    restored.load_state_dict(saved)
    continued.step(1)  # already done before the checkpoint: nothing happens
    assert calls == []
    continued.step(2)
    assert [g["lr"] for g in restored.param_groups] == pytest.approx(uninterrupted)


def _supernet(seed=0):
    torch.manual_seed(seed)
    return PCDartsStrategy.build_supernet(tiny_plain_unet(2, deep_supervision=False), CellOptions(init="small"))


def test_every_cell_parameter_is_in_exactly_one_group_and_every_probed_convolution_has_its_own():
    network = _supernet()
    groups = adas_parameter_groups(network, 0.1)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) and set(grouped) == {id(p) for p in cell_parameters(network)}
    modules = {name for *_, name, _ in cell_weights(network)}
    assert {g[MODULE_KEY] for g in groups if g[MODULE_KEY]} == modules
    assert groups[-1][MODULE_KEY] is None


def test_adas_for_cells_probes_the_network_and_keeps_an_unfrozen_base_at_its_constant_rate():
    network = _supernet()
    base = [p for p in network.encoder.parameters()]
    optimizer, scheduler = adas_for_cells(network, base_parameters=base, base_lr=1e-4)
    scheduler.step(0)
    scheduler.step(1)  # weights unchanged: every gain change is 0, every rate decays by beta
    assert all(rate == pytest.approx(0.1 * 0.8) for rate in scheduler.rates().values())
    assert optimizer.param_groups[-1]["lr"] == 1e-4 and MODULE_KEY not in optimizer.param_groups[-1]
