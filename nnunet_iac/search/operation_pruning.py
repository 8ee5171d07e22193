"""What every pruning search strategy shares: PC-DARTS' architecture steps on a supernet whose operations can be
pruned edge by edge, and the bookkeeping of what is left.

The mask (edges x operations) lives here and in the supernet: ``ArchitectureParameters.set_operation_mask``
gives pruned operations weight 0, and each cell computes, for the edges that leave a node, only operations
still left on one of them (``SearchCell.apply_operation_mask``). ``zero`` is never pruned: it is never
computed, and its alpha scales the edge as in PC-DARTS. The search is finished when every edge has one
operation left. Subclasses decide what to prune in ``end_epoch`` and add their own checkpointed state.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnunet_iac.cells.operations import ZERO
from nnunet_iac.network.implant import implanted_decoder, mask_operations
from nnunet_iac.search.pc_darts import PCDartsStrategy


class OperationPruningStrategy(PCDartsStrategy):
    ddp_refusal = ("pruned operations are not computed any more, so their weights get no gradient, and nnU-Net's "
                   "DDP wrapper (without find_unused_parameters) stops on parameters without one.")

    def __init__(self):
        super().__init__()
        self.mask = None          # (edges, ops) bool: operations left on each edge
        self.zero_columns = []
        self.search_epochs = 0
        self.last_epoch = {}

    def setup(self, network: nn.Module, context) -> None:
        super().setup(network, context)
        decoder = implanted_decoder(network)
        self.mask = torch.ones_like(decoder.iac_architecture.alpha, dtype=torch.bool).cpu()
        self.zero_columns = [i for i, name in enumerate(decoder.iac_cells[0].operation_names) if name == ZERO]

    @property
    def num_edges(self) -> int:
        return self.mask.shape[0]

    def active(self, edge: int) -> list[int]:
        """The non-zero operations left on ``edge``."""
        return [i for i in range(self.mask.shape[1]) if bool(self.mask[edge, i]) and i not in self.zero_columns]

    def operations_left(self) -> int:
        return sum(len(self.active(e)) for e in range(self.num_edges))

    def prune(self, edge: int, operations) -> None:
        for i in operations:
            self.mask[edge, i] = False

    def apply_mask(self, mask: torch.Tensor | None = None) -> None:
        """Put ``mask`` (default: the strategy's own) into the supernet's weights and cells."""
        mask_operations(self.network, self.mask if mask is None else mask)

    def finished(self) -> bool:
        return self.mask is not None and all(len(self.active(e)) == 1 for e in range(self.num_edges))

    def epoch_fields(self) -> dict[str, float]:
        return dict(self.last_epoch)

    def pruning_state(self) -> dict[str, Any]:
        """A subclass's own state next to the mask (JSON-friendly lists and numbers)."""
        return {}

    def load_pruning_state(self, state: dict[str, Any]) -> None:
        """Counterpart of ``pruning_state``."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pruning": {"mask": self.mask.tolist(), "search_epochs": self.search_epochs,
                                                    **self.pruning_state()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        pruning = state.get("pruning")
        if not pruning:
            return
        self.mask = torch.tensor(pruning["mask"], dtype=torch.bool)
        self.search_epochs = int(pruning["search_epochs"])
        self.load_pruning_state(pruning)
        self.apply_mask()
