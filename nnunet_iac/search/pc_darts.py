"""PC-DARTS as a ``SearchStrategy``: partial-channel mixed edges, alpha/beta by Adam on val_search batches.

The IAC paper's Stage II (Algorithm 1, with PC-DARTS' partial channels and edge normalization): a supernet
with one ``SearchCell`` per skip connection sharing one alpha (edges x operations) and beta (edges); before
each cell-weight step, one first-order Adam step of alpha/beta on a val_search batch (``architecture_step``:
fp16 autocast and its own GradScaler on CUDA); the genotype keeps, per node, the two strongest incoming edges
by beta and their strongest non-zero operation by alpha (``derive_genotype``), and, with branching, the strongest
merge of each neighbouring level by branch_alpha.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from torch import nn

from nnunet_iac.cells.branching import derive_branches
from nnunet_iac.cells.genotype import canonical_branches, derive_genotype
from nnunet_iac.network.builders import CellOptions, implant_search_cells
from nnunet_iac.network.implant import architecture_parameters, cell_parameters, implanted_decoder
from nnunet_iac.search.architecture_step import architecture_grad_scaler, architecture_step, gradients_only_for
from nnunet_iac.search.optimizers import architecture_optimizer
from nnunet_iac.search.strategy import ArchitectureView, SearchStrategy, StrategyContext


class PCDartsStrategy(SearchStrategy):
    name = "pc_darts"

    def __init__(self):
        self.network = None
        self.optimizer = None
        self.grad_scaler = None
        self.device = None

    @staticmethod
    def build_supernet(base: nn.Module, options: CellOptions) -> nn.Module:
        return implant_search_cells(base, options)

    def setup(self, network: nn.Module, context: StrategyContext) -> None:
        self.network = network
        self.device = context.device
        self.optimizer = architecture_optimizer(architecture_parameters(network), context.arch_lr)
        self.grad_scaler = architecture_grad_scaler(context.device)

    def architecture_parameters(self) -> list[nn.Parameter]:
        return architecture_parameters(self.network)

    def architecture_update(self, model: nn.Module, loss_fn: Callable, next_batch: Callable[[], dict],
                            on_gradients: Callable[[], None]) -> float:
        """Cell weights get no gradient during this step (nor does the frozen base)."""
        with gradients_only_for(self.architecture_parameters(), cell_parameters(self.network)):
            return architecture_step(model, loss_fn, next_batch(), self.optimizer, self.device, self.grad_scaler,
                                     on_gradients)

    def current(self, meta: dict[str, Any], cell_options: dict[str, Any]) -> ArchitectureView:
        decoder = implanted_decoder(self.network)
        architecture = decoder.iac_architecture
        op_weights, edge_weights = architecture()
        names = tuple(decoder.iac_cells[0].operation_names)
        genotype = derive_genotype(op_weights, edge_weights, architecture.topology, names,
                                   meta={**meta, "strategy": self.name}, cell_options=cell_options)
        if architecture.branching:
            genotype = replace(genotype, branches=canonical_branches(derive_branches(architecture.branch_weights())))
        return ArchitectureView(genotype, op_weights, edge_weights, names)

    def state_dict(self) -> dict[str, Any]:
        return {"arch_optimizer_state": self.optimizer.state_dict(),
                "arch_grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("arch_optimizer_state"):
            self.optimizer.load_state_dict(state["arch_optimizer_state"])
        if self.grad_scaler is not None and state.get("arch_grad_scaler_state"):
            self.grad_scaler.load_state_dict(state["arch_grad_scaler_state"])
