"""Adas for the cell weights: one learning rate per convolution, moved at each epoch by the change of its probe.

DARTS-ADP (``../shared/papers/probeable-darts-adp.txt``) searched DARTS cells with Adas (Hosseini &
Plataniotis, arXiv 2006.06587) instead of SGD and got smaller and more accurate cells: candidate operations
are scaled by a weight between 0 and 1, so their convolutions get small gradients and a single learning rate
leaves most of them at a stable rank near zero (our cells show the same, issue 17). Adas, as those papers
describe it, keeps SGD with momentum but gives every convolution layer ``l`` its own rate, updated at the end
of each epoch ``t`` from the layer's knowledge gain ``G`` (our stable rank of the EVBMF low-rank part,
averaged over the two channel unfoldings, nnunet_iac/search/probing.py):

    eta(t, l) = beta * eta(t - 1, l) + zeta * (G(t, l) - G(t - 1, l))

``beta`` is the "scheduler beta" (a layer that stops gaining slows down geometrically), ``zeta`` the gain's
weight (1 in Adas). Written from that description; choices of ours, each a setting:

- initial rate ``ADAS_LR`` = 0.1 with momentum 0.9 (Adas' momentum, no Nesterov): an effective step
  lr / (1 - momentum) = 1.0 x the gradient, the same as the cells' SGD (0.01, momentum 0.99), so a
  comparison of the two changes the per-layer adaptation only;
- a rate never falls below ``ADAS_MIN_LR`` (1e-6): a falling gain could make it negative, an ascent;
- the other cell parameters (norm weights, biases of layers without a probe, the output gate) are one group
  whose rate is the mean of the convolutions' rates, so they anneal with them;
- a grouped convolution of the search cell (one operation for every edge leaving a node) is one layer: its
  gain is the mean over its edges' blocks (nnunet_iac/search/cell_probing.py).

The update runs when nnU-Net steps its learning-rate scheduler at the start of an epoch (``AdasScheduler``),
from the weights the previous epoch left; gains and rates live in the optimizer's parameter groups, so
nnU-Net's checkpoint holds them and ``--c`` continues exactly. When the trainer has just probed those weights
for probe_history.json, it hands the gains over (``offer``) and the scheduler does not probe them again.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nnunet_iac.network.implant import cell_parameters
from nnunet_iac.search.cell_probing import cell_weights, module_gains, probe_cells

ADAS_LR = 0.1
ADAS_MOMENTUM = 0.9
ADAS_BETA = 0.8
ADAS_ZETA = 1.0
ADAS_MIN_LR = 1e-6
MODULE_KEY = "adas_module"


def adas_parameter_groups(network: nn.Module, lr: float) -> list[dict]:
    """One group per probed convolution of the cells (its weight and bias), and one for every other cell
    parameter (``adas_module`` None)."""
    modules = dict(network.named_modules())
    groups, grouped, named = [], set(), set()
    for *_, name, _weight in cell_weights(network):
        if name in named:  # a grouped convolution yields one weight block per edge
            continue
        named.add(name)
        params = [p for p in modules[name].parameters(recurse=False) if p.requires_grad]
        groups.append({"params": params, MODULE_KEY: name, "lr": lr, "adas_gain": None, "adas_epoch": -1})
        grouped.update(id(p) for p in params)
    rest = [p for p in cell_parameters(network) if id(p) not in grouped]
    if rest:
        groups.append({"params": rest, MODULE_KEY: None, "lr": lr, "adas_gain": None, "adas_epoch": -1})
    return groups


def adas_optimizer(network: nn.Module, lr: float = ADAS_LR, momentum: float = ADAS_MOMENTUM,
                   weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD over the cells' parameters in Adas' groups; ``AdasScheduler`` moves the rates."""
    return torch.optim.SGD(adas_parameter_groups(network, lr), lr, momentum=momentum, weight_decay=weight_decay)


def adas_rate(lr: float, gain: float, previous_gain: float, beta: float, zeta: float,
              min_lr: float = ADAS_MIN_LR) -> float:
    """One layer's next rate: ``beta * lr + zeta * (gain - previous_gain)``, not below ``min_lr``."""
    return max(min_lr, beta * lr + zeta * (gain - previous_gain))


def adas_for_cells(network: nn.Module, lr: float = 0.0, beta: float = ADAS_BETA, zeta: float = ADAS_ZETA,
                   base_parameters=(), base_lr: float = 0.0) -> tuple[torch.optim.SGD, "AdasScheduler"]:
    """Adas over the cells (``lr`` 0: ``ADAS_LR``) and its scheduler; base weights a retrain unfreezes, if any,
    are one more group at the constant ``base_lr`` (0: a tenth of the cells' initial rate), which Adas does not
    move: the base has no probe history to follow."""
    lr = lr or ADAS_LR
    optimizer = adas_optimizer(network, lr)
    base_parameters = list(base_parameters)
    if base_parameters:
        optimizer.add_param_group({"params": base_parameters, "lr": base_lr or 0.1 * lr})
    return optimizer, AdasScheduler.for_network(optimizer, network, beta, zeta)


class AdasScheduler:
    """nnU-Net's ``lr_scheduler``: ``step(epoch)`` at each epoch start probes the cells and moves every
    convolution group's rate (epoch 0 only records the starting gains). Stepping an epoch twice changes
    nothing, so a continued run (the groups' state restored from the checkpoint) repeats an uninterrupted one.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, gains: Callable[[], dict[str, float]],
                 beta: float = ADAS_BETA, zeta: float = ADAS_ZETA, min_lr: float = ADAS_MIN_LR):
        self.optimizer = optimizer
        self.gains = gains
        self.beta, self.zeta, self.min_lr = beta, zeta, min_lr
        self.offered: tuple[int, dict[str, float]] | None = None

    def offer(self, epoch: int, gains: dict[str, float]) -> None:
        """Gains of the weights ``step(epoch)`` will see, probed already (the same weights probe the same, so
        this saves the probe's time and changes nothing; a continued run without an offer probes itself)."""
        self.offered = (int(epoch), dict(gains))

    @classmethod
    def for_network(cls, optimizer, network: nn.Module, beta: float = ADAS_BETA, zeta: float = ADAS_ZETA):
        return cls(optimizer, lambda: module_gains(probe_cells(network)), beta, zeta)

    def step(self, current_step: int | None = None) -> None:
        epoch = 0 if current_step is None else int(current_step)
        layers = [g for g in self.optimizer.param_groups if g.get(MODULE_KEY)]
        if not layers or all(g["adas_epoch"] >= epoch for g in layers):
            return
        gains = self.offered[1] if self.offered is not None and self.offered[0] == epoch else self.gains()
        self.offered = None
        for group in layers:
            if group["adas_epoch"] >= epoch:
                continue
            group["adas_epoch"] = epoch
            gain = gains.get(group[MODULE_KEY])
            if gain is None:  # a layer no longer probed (its operation pruned from every edge): rate kept
                continue
            if group["adas_gain"] is not None:
                group["lr"] = adas_rate(group["lr"], gain, group["adas_gain"], self.beta, self.zeta, self.min_lr)
            group["adas_gain"] = gain
        mean_rate = sum(g["lr"] for g in layers) / len(layers)
        for group in self.optimizer.param_groups:
            if MODULE_KEY in group and group[MODULE_KEY] is None:
                group["lr"], group["adas_epoch"] = mean_rate, epoch

    def rates(self) -> dict[str, float]:
        """The convolutions' current rates, by module name (for the history)."""
        return {g[MODULE_KEY]: g["lr"] for g in self.optimizer.param_groups if g.get(MODULE_KEY)}
