"""A discrete genotype scored on the trained supernet (weight sharing): its one-hot architecture.

An evolutionary search over discrete genotypes (issue 18, after EMONAS-Net) needs a fitness for each of
hundreds of genotypes; training each one is out of reach, so, as in every one-shot search, the supernet whose
cell weights the search trained stands in for them. ``genotype_forward`` makes the supernet compute one
genotype: on each of its edges only its operation, with weight 1; every other edge contributes nothing; each
node is the plain sum of its chosen inputs, as in the discrete cell. Each operation is computed on the chosen
edges that use it and nowhere else (an operation the cell cannot slice, ``cells.edge_slicing``, on every edge of
a node that uses it once), so scoring a genotype costs about what its cell costs, not the whole supernet.

What it does not reproduce: PC-DARTS' partial channels (1/K of the channels go through the operation, the rest
bypass it), which the discrete cell does not have. The score ranks genotypes; it is not their retrained Dice.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.network.implant import implanted_decoder


def one_hot_weights(genotype: Genotype, topology: CellTopology,
                    operation_names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(op_weights, edge_weights) of alpha's and beta's shapes: 1 for each chosen edge and its operation, else 0."""
    if genotype.topology.num_nodes != topology.num_nodes:
        raise GenotypeError(f"The genotype has {genotype.topology.num_nodes} intermediate nodes; the supernet's cells "
                            f"have {topology.num_nodes}.")
    op_weights = torch.zeros(topology.num_edges, len(operation_names))
    edge_weights = torch.zeros(topology.num_edges)
    for node, inputs in enumerate(genotype.nodes):
        for operation, src in inputs:
            if operation not in operation_names:
                raise GenotypeError(f"The genotype uses {operation!r}, which the supernet's search space "
                                    f"({', '.join(operation_names)}) lacks.")
            row = topology.edge_offset(node) + src
            op_weights[row, operation_names.index(operation)] = 1.0
            edge_weights[row] = 1.0
    return op_weights, edge_weights


@contextmanager
def genotype_forward(network: nn.Module, genotype: Genotype) -> Iterator[None]:
    """Within the block, ``network`` (an implanted supernet) computes ``genotype``'s cells; afterwards it is the
    supernet it was, with its alpha, beta and the operations its cells computed."""
    decoder = implanted_decoder(network)
    architecture = decoder.iac_architecture
    names = tuple(decoder.iac_cells[0].operation_names)
    op_weights, edge_weights = one_hot_weights(genotype, architecture.topology, names)
    computed_before = [[edges.edge_mask for edges in cell.sources] for cell in decoder.iac_cells]
    architecture.fix_weights(op_weights, edge_weights)
    try:
        for cell in decoder.iac_cells:
            cell.apply_operation_mask(op_weights > 0)
        yield
    finally:
        architecture.fix_weights(None)
        for cell, before in zip(decoder.iac_cells, computed_before):
            for edges, mask in zip(cell.sources, before):
                edges.set_edge_mask(mask)
