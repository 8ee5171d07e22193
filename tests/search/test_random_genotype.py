"""Random genotypes (nnunet_iac.search.random_genotype): the same shape, options and space as the search's
genotype, drawn uniformly and reproducibly."""
import collections
import itertools
from dataclasses import replace

import pytest
import torch
from scipy.stats import chisquare

from nnunet_iac.cells.branching import DIRECTIONS, MERGES, NONE, ON
from nnunet_iac.cells.genotype import Genotype, GenotypeError, derive_genotype
from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.search.random_genotype import random_genotype

OPTIONS = {"k": 2, "width_divisor": 4, "mode": "residual", "init": "small", "levels": "all", "branching": "off"}


def searched(space=tuple(OPERATIONS)) -> Genotype:
    topology = CellTopology()
    alpha = torch.zeros(topology.num_edges, len(space))
    alpha[:, -1] = 1.0  # the search would choose the last operation everywhere
    return derive_genotype(alpha.softmax(-1), torch.ones(topology.num_edges), topology, space,
                           meta={"spatial_dims": 2, "levels": 3, "epoch": 7}, cell_options=OPTIONS)


def test_a_draw_keeps_the_template_shape_options_space_and_network_facts():
    template = searched()
    drawn = random_genotype(template, seed=3)
    assert [len(node) for node in drawn.nodes] == [len(node) for node in template.nodes]
    assert drawn.concat == template.concat
    assert drawn.cell_options == OPTIONS and drawn.search_space == template.search_space
    assert drawn.meta["spatial_dims"] == 2 and drawn.meta["levels"] == 3 and drawn.meta["random_draw"]["seed"] == 3
    assert "epoch" not in drawn.meta  # not a search epoch's genotype
    for j, node in enumerate(drawn.nodes):
        sources = [src for _, src in node]
        assert len(set(sources)) == len(sources) and all(0 <= src < 2 + j for src in sources)
        assert all(op != ZERO and op in template.search_space for op, _ in node)
    assert Genotype.from_dict(drawn.to_dict()) == drawn


def test_the_same_seed_draws_the_same_genotype_and_other_seeds_others():
    template = searched()
    assert random_genotype(template, 5) == random_genotype(template, 5)
    assert len({random_genotype(template, seed) for seed in range(20)}) > 15


def _uniform(counts: collections.Counter, categories: list) -> float:
    """Chi-square p-value of ``counts`` against equal frequencies over ``categories`` (a category never drawn
    counts 0, so a sampler that stops drawing one fails)."""
    return float(chisquare([counts.get(c, 0) for c in categories]).pvalue)


def test_every_node_draws_each_subset_of_its_sources_and_each_operation_uniformly():
    """Chi-square per node over every k-subset of its possible sources, and per node over the operations: a
    sampler that fixed some nodes to their latest inputs, or dropped an operation, fails here (issue 37); the
    draws are seeded, so the p-values are fixed numbers, not chance."""
    template = searched()
    draws = [random_genotype(template, seed) for seed in range(3000)]
    operations = sorted(set(OPERATIONS) - {ZERO})
    for j, node in enumerate(template.nodes):
        subsets = list(itertools.combinations(template.topology.node_inputs(j), len(node)))
        drawn = collections.Counter(tuple(sorted(src for _, src in g.nodes[j])) for g in draws)
        assert set(drawn) <= set(subsets)
        if len(subsets) > 1:
            assert _uniform(drawn, subsets) > 1e-3, f"node {j}: sources {dict(drawn)}"
        ops = collections.Counter(op for g in draws for op, _ in g.nodes[j])
        assert _uniform(ops, operations) > 1e-3, f"node {j}: operations {dict(ops)}"


def test_a_branching_search_draws_each_merge_of_each_direction_uniformly():
    template = replace(searched(), cell_options={**OPTIONS, "branching": ON})
    draws = [dict(random_genotype(template, seed).branches) for seed in range(1500)]
    for direction in DIRECTIONS:
        merges = collections.Counter(g.get(direction, NONE) for g in draws)
        assert _uniform(merges, list(MERGES)) > 1e-3, f"{direction}: {dict(merges)}"


def test_a_smaller_space_is_respected_and_an_empty_one_refused():
    small = searched(space=(ZERO, "identity", "sep_conv_3x3"))
    assert {op for seed in range(50) for op in random_genotype(small, seed).operations()} == {"identity",
                                                                                             "sep_conv_3x3"}
    only_zero = replace(small, search_space=(ZERO,))
    with pytest.raises(GenotypeError, match="no operation besides 'zero'"):
        random_genotype(only_zero, 0)
