"""alpha and beta: the one architecture shared by the search cells of all levels.

Both are named ``nn.Parameter``s of a module of their own, so that they get their own optimizer, are
saved in checkpoints with everything else, and can be told apart from cell weights by module.

A pruning search strategy masks operations out of some edges (``set_operation_mask``): their weight becomes
exactly 0 and the softmax is taken over the operations left. The mask is not part of the state_dict (searches
without pruning keep their checkpoint keys); the strategy that prunes keeps it in its own checkpointed state.

An evolutionary strategy scores discrete genotypes on the trained supernet (``fix_weights``): while fixed, the
cells see the genotype's one-hot operation and edge weights instead of softmax(alpha) and softmax(beta), and
alpha and beta themselves are left untouched.

With branching (``cells.branching``) a third parameter, ``branch_alpha`` (directions x merges: none, add,
concat), weighs how each neighbouring level's features join the cells; it exists only then, so the checkpoints
of searches without branching keep their keys.
"""
from __future__ import annotations

import torch
from torch import nn

from nnunet_iac.cells.branching import DIRECTIONS, MERGES
from nnunet_iac.cells.topology import CellTopology


class ArchitectureParameters(nn.Module):
    def __init__(self, topology: CellTopology, num_operations: int, branching: bool = False):
        super().__init__()
        self.topology = topology
        # The paper initializes alpha and beta with ones: every op and every edge starts equally likely.
        self.alpha = nn.Parameter(torch.ones(topology.num_edges, num_operations))
        self.beta = nn.Parameter(torch.ones(topology.num_edges))
        self.branching = branching
        if branching:  # every merge of every branch equally likely, as alpha's operations
            self.branch_alpha = nn.Parameter(torch.ones(len(DIRECTIONS), len(MERGES)))
        self.register_buffer("operation_mask", torch.ones(topology.num_edges, num_operations, dtype=torch.bool),
                             persistent=False)
        self.masked = False  # a Python flag, so that an unpruned search never checks the mask on the device
        self.fixed = None     # (op_weights, edge_weights) the cells see instead of alpha's and beta's, or None

    def set_operation_mask(self, mask: torch.Tensor) -> None:
        """``mask[e, o]`` False removes operation ``o`` from edge ``e``; every edge keeps at least one."""
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape != self.alpha.shape:
            raise ValueError(f"An operation mask of shape {tuple(mask.shape)} does not fit alpha's "
                             f"{tuple(self.alpha.shape)}.")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("An operation mask must leave every edge at least one operation.")
        self.operation_mask.copy_(mask.to(self.operation_mask.device))
        self.masked = not bool(mask.all())

    def operation_weights(self) -> torch.Tensor:
        """softmax(alpha) over the operations of each edge (those not masked out), shape (edges, ops)."""
        if not self.masked:
            return torch.softmax(self.alpha, dim=-1)
        return torch.softmax(self.alpha.masked_fill(~self.operation_mask, float("-inf")), dim=-1)

    def edge_weights(self) -> torch.Tensor:
        """softmax(beta) over the incoming edges of each intermediate node, shape (edges,)."""
        parts = []
        for node in range(self.topology.num_nodes):
            start = self.topology.edge_offset(node)
            stop = start + len(self.topology.node_inputs(node))
            parts.append(torch.softmax(self.beta[start:stop], dim=0))
        return torch.cat(parts)

    def branch_weights(self) -> torch.Tensor | None:
        """softmax(branch_alpha) over the merges of each direction, shape (directions, merges); None without
        branching."""
        return torch.softmax(self.branch_alpha, dim=-1) if self.branching else None

    def fix_weights(self, op_weights: torch.Tensor | None, edge_weights: torch.Tensor | None = None) -> None:
        """Make the cells see these weights (shapes of alpha and beta) until called with None."""
        if op_weights is None:
            self.fixed = None
            return
        if op_weights.shape != self.alpha.shape or edge_weights is None or edge_weights.shape != self.beta.shape:
            raise ValueError(f"Fixed weights of shapes {tuple(op_weights.shape)} and "
                             f"{None if edge_weights is None else tuple(edge_weights.shape)} do not fit alpha "
                             f"{tuple(self.alpha.shape)} and beta {tuple(self.beta.shape)}.")
        device = self.alpha.device
        self.fixed = (op_weights.to(device, self.alpha.dtype), edge_weights.to(device, self.beta.dtype))

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fixed is not None:
            return self.fixed
        return self.operation_weights(), self.edge_weights()
