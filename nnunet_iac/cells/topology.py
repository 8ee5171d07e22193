"""Shape of the cell graph and the per-level cell width, shared by every cell and the genotype.

Node numbering: 0 is the encoder skip input, 1 the upsampled decoder input, 2 .. 2+N-1 the
intermediate nodes. Intermediate node j (0-based) has an edge from every earlier node, so a cell with
N = 4 intermediate nodes has 2 + 3 + 4 + 5 = 14 edges, enumerated node by node, source by source.
"""
from __future__ import annotations

from dataclasses import dataclass

NUM_INPUTS = 2


@dataclass(frozen=True)
class CellTopology:
    num_nodes: int = 4
    concat_last: int = 4

    def __post_init__(self):
        if self.num_nodes < 1:
            raise ValueError(f"A cell needs at least one intermediate node, got num_nodes={self.num_nodes}.")
        if not 1 <= self.concat_last <= self.num_nodes:
            raise ValueError(f"concat_last must be between 1 and num_nodes={self.num_nodes}, "
                             f"got {self.concat_last}.")

    def node_inputs(self, node: int) -> range:
        """Sources of intermediate node ``node`` (0-based), as graph node numbers."""
        return range(NUM_INPUTS + node)

    def edge_offset(self, node: int) -> int:
        return sum(NUM_INPUTS + j for j in range(node))

    @property
    def num_edges(self) -> int:
        return self.edge_offset(self.num_nodes)

    def edges(self) -> list[tuple[int, int]]:
        """(source, intermediate node) for every edge, in alpha/beta row order."""
        return [(src, node) for node in range(self.num_nodes) for src in self.node_inputs(node)]

    @property
    def concat_nodes(self) -> tuple[int, ...]:
        """Graph node numbers whose outputs are concatenated into the cell output."""
        last = NUM_INPUTS + self.num_nodes
        return tuple(range(last - self.concat_last, last))


def cell_width(skip_channels: int, partial_k: int = 4, divisor: int = 4) -> int:
    """Channels inside a cell at a level whose encoder skip has ``skip_channels``.

    Rule: skip_channels / divisor, rounded up to a multiple of K (partial channels need C % K == 0),
    and at least K. With divisor 4 a Hippocampus 2d plan (skips 32, 64, 128) gets widths 8, 16, 32,
    which keeps the added parameters to a few percent of the base.
    """
    if partial_k < 1 or divisor < 1:
        raise ValueError(f"partial_k and divisor must be >= 1, got {partial_k} and {divisor}.")
    base = -(-skip_channels // divisor)
    return max(partial_k, -(-base // partial_k) * partial_k)
