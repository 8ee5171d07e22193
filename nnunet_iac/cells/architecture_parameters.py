"""alpha and beta: the one architecture shared by the search cells of all levels.

Both are named ``nn.Parameter``s of a module of their own, so that they get their own optimizer, are
saved in checkpoints with everything else, and can be told apart from cell weights by module.
"""
from __future__ import annotations

import torch
from torch import nn

from nnunet_iac.cells.topology import CellTopology


class ArchitectureParameters(nn.Module):
    def __init__(self, topology: CellTopology, num_operations: int):
        super().__init__()
        self.topology = topology
        # The paper initializes alpha and beta with ones: every op and every edge starts equally likely.
        self.alpha = nn.Parameter(torch.ones(topology.num_edges, num_operations))
        self.beta = nn.Parameter(torch.ones(topology.num_edges))

    def operation_weights(self) -> torch.Tensor:
        """softmax(alpha) over the operations of each edge, shape (edges, ops)."""
        return torch.softmax(self.alpha, dim=-1)

    def edge_weights(self) -> torch.Tensor:
        """softmax(beta) over the incoming edges of each intermediate node, shape (edges,)."""
        parts = []
        for node in range(self.topology.num_nodes):
            start = self.topology.edge_offset(node)
            stop = start + len(self.topology.node_inputs(node))
            parts.append(torch.softmax(self.beta[start:stop], dim=0))
        return torch.cat(parts)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.operation_weights(), self.edge_weights()
