"""Variation operators and a feature vector for discrete genotypes: what an evolutionary search breeds with.

Every operator keeps a genotype valid in its own space: the same number of inputs per node, distinct sources
that exist for that node, operations of the space other than ``zero``, the same output nodes. So every child
is a cell Stage III can build, and NSGA-II never spends an evaluation on an invalid one.

- ``mutate``: one input of one node changes, either its operation (to another one of the space) or its source
  (to one the node does not use yet), with equal chance;
- ``crossover``: each node is taken whole from one parent or the other (uniform crossover by node: a node's
  inputs belong together, since they were chosen as a pair);
- ``features``: a 0/1 vector over (edge, operation), the surrogate's input (EMONAS' random forest learns from it).

Two genotypes are the same cell when they are equal (``Genotype`` compares nodes, output and branches, not meta),
so the evolution keys its cache by the genotype itself.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.cells.operations import ZERO
from nnunet_iac.search.one_hot import one_hot_weights


def operations_of(genotype: Genotype, space: tuple[str, ...]) -> list[str]:
    return [op for op in (genotype.search_space or space) if op != ZERO]


def mutate(genotype: Genotype, rng: np.random.Generator, space: tuple[str, ...]) -> Genotype:
    nodes = [list(node) for node in genotype.nodes]
    node = int(rng.integers(len(nodes)))
    position = int(rng.integers(len(nodes[node])))
    operation, src = nodes[node][position]
    operations = [op for op in operations_of(genotype, space) if op != operation]
    free = [s for s in genotype.topology.node_inputs(node) if s not in {s2 for _, s2 in nodes[node]}]
    if operations and (not free or rng.random() < 0.5):
        operation = operations[int(rng.integers(len(operations)))]
    elif free:
        src = int(free[int(rng.integers(len(free)))])
    nodes[node][position] = (operation, src)
    return replace(genotype, nodes=tuple(tuple(sorted(n, key=lambda pair: pair[1])) for n in nodes), meta={})


def crossover(first: Genotype, second: Genotype, rng: np.random.Generator) -> Genotype:
    nodes = tuple(a if rng.random() < 0.5 else b for a, b in zip(first.nodes, second.nodes))
    return replace(first, nodes=nodes, meta={})


def features(genotype: Genotype, operation_names: tuple[str, ...]) -> np.ndarray:
    """The genotype's one-hot operation weights (edges x operations), flattened."""
    return one_hot_weights(genotype, genotype.topology, operation_names)[0].flatten().numpy()
