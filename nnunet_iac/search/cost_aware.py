"""Cost-aware PC-DARTS: the architecture loss pays for the operations it weights (issue 18, after EMONAS-Net's
two objectives and Bractivate's efficiency loss).

Two forms of the architecture loss on a val_search batch, with C the supernet's expected cost under alpha and
beta (``operation_costs.expected_cost``, between 0 and 1) in the measure ``nnUNet_IAC_cost_measure``
(parameters, flops or latency, measured per operation and level, ``operation_costs.json``):

- ``additive`` (default): ``loss + lambda * C``, the usual differentiable-NAS resource penalty;
- ``els``: ``loss * (1 + lambda * log(1 + C_rel))`` with ``C_rel`` the expected cost relative to the cheapest
  non-zero operation on every edge: Bractivate's efficiency loss (ELS = gamma log(P) log(T) loss, gamma 0.01) is
  multiplicative in the log of the cost; with one cost instead of parameters and epoch time, and 1 + lambda
  (...) so that lambda = 0 is the plain loss.

Only alpha and beta see the term (the cell weights' step is the plain loss). ``lambda`` is
``nnUNet_IAC_cost_lambda``; its expected cost per epoch is in ``search_history.json`` (``strategy_fields``).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nnunet_iac.cells.operations import ZERO
from nnunet_iac.network.implant import implanted_decoder
from nnunet_iac.search.operation_costs import expected_cost, load_or_measure_costs, operation_cost_vector
from nnunet_iac.search.pc_darts import PCDartsStrategy

COST_FORMS = ("additive", "els")


class CostAwareStrategy(PCDartsStrategy):
    name = "cost"

    def __init__(self):
        super().__init__()
        self.costs = None
        self.cheapest = 0.0
        self.lam = 0.0
        self.form = "additive"
        self.seen = []
        self.last_epoch = {}

    def setup(self, network: nn.Module, context) -> None:
        super().setup(network, context)
        if context.patch_size is None or context.output_folder is None:
            raise ValueError("The cost-aware search measures its operations on a prediction patch and caches them in "
                             "the fold folder; the trainer must pass patch_size and output_folder.")
        self.lam, self.form = float(context.options["cost_lambda"]), context.options["cost_form"]
        if self.form not in COST_FORMS:
            raise ValueError(f"Unknown cost form {self.form!r}; use one of {', '.join(COST_FORMS)}.")
        decoder = implanted_decoder(network)
        names = decoder.iac_cells[0].operation_names
        rows = load_or_measure_costs(context.output_folder, network, context.patch_size, context.device)
        self.costs = operation_cost_vector(rows, names, context.options["cost_measure"])
        paying = [float(c) for c, name in zip(self.costs, names) if name != ZERO and c > 0]
        self.cheapest = min(paying) if paying else 0.0

    def expected_cost(self) -> torch.Tensor:
        op_weights, edge_weights = implanted_decoder(self.network).iac_architecture()
        return expected_cost(op_weights, edge_weights, self.costs)

    def penalised(self, loss: torch.Tensor) -> torch.Tensor:
        cost = self.expected_cost()
        self.seen.append(float(cost.detach()))
        if self.form == "additive":
            return loss + self.lam * cost
        relative = cost * float(self.costs.max()) / self.cheapest if self.cheapest else cost
        return loss * (1 + self.lam * torch.log1p(relative))

    def architecture_update(self, model: nn.Module, loss_fn: Callable, next_batch: Callable[[], dict],
                            on_gradients: Callable[[], None]) -> float:
        return super().architecture_update(model, lambda out, target: self.penalised(loss_fn(out, target)),
                                           next_batch, on_gradients)

    def end_epoch(self, searching: bool) -> None:
        """The epoch's mean expected cost (over its architecture steps) for its history row."""
        self.last_epoch = {"expected_cost": float(sum(self.seen) / len(self.seen))} if self.seen else {}
        self.seen = []

    def epoch_fields(self) -> dict[str, float]:
        return dict(self.last_epoch)
