"""Random genotypes of a search's own space: the baseline every searched cell has to beat.

A differentiable search earns its cost only if its genotype retrains better than one drawn at random from the
same space and trained with the same Stage-III budget (issue 14). The draw is uniform in the sense the
benchmark's chance agreement assumes (nnunet_iac/benchmark/measures.chance_agreement): for every intermediate node, its
inputs are a uniformly drawn subset of its possible sources (as many as the template's node has), and every
chosen edge gets one of the space's non-``zero`` operations, uniformly; where the search had branching, each
neighbouring level's merge (none, add, concat) is drawn uniformly too.

The template is the search's genotype: a random genotype keeps its graph shape, cell options (K, width, mode,
init), search space and the network facts in its ``meta`` (dimensionality, levels), so Stage III builds the
same kind of cells around a different graph and refuses it for the same reasons it would refuse the search's.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnunet_iac.cells.branching import DIRECTIONS, MERGES, ON
from nnunet_iac.cells.genotype import Genotype, GenotypeError, canonical_branches
from nnunet_iac.cells.operations import OPERATIONS, ZERO


def random_genotype(template: Genotype, seed: int) -> Genotype:
    """A genotype drawn uniformly from ``template``'s space with its shape; the same seed draws the same one."""
    space = template.search_space or tuple(OPERATIONS)
    operations = [op for op in space if op != ZERO]
    if not operations:
        raise GenotypeError("The template's search space has no operation besides 'zero'; nothing to draw from.")
    rng = np.random.default_rng(seed)
    topology = template.topology
    nodes = []
    for j, node in enumerate(template.nodes):
        sources = list(topology.node_inputs(j))
        chosen = sorted(int(s) for s in rng.choice(sources, size=len(node), replace=False))
        nodes.append(tuple((operations[int(rng.integers(len(operations)))], src) for src in chosen))
    branches = ()
    if (template.cell_options or {}).get("branching") == ON:  # the merges are part of the space searched
        branches = canonical_branches({d: MERGES[int(rng.integers(len(MERGES)))] for d in DIRECTIONS})
    meta = {key: value for key, value in template.meta.items() if key in ("spatial_dims", "levels")}
    meta.update(random_draw={"seed": seed, "from": "uniform over the template's search space"})
    return replace(template, nodes=tuple(nodes), meta=meta, branches=branches)
