"""Random genotypes (nnunet_iac.search.random_genotype): the same shape, options and space as the search's
genotype, drawn uniformly and reproducibly."""
import collections
from dataclasses import replace

import pytest
import torch

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


def test_draws_are_uniform_over_operations_and_sources():
    template = searched()
    draws = [random_genotype(template, seed) for seed in range(3000)]
    operations = collections.Counter(op for g in draws for op in g.operations())
    expected = sum(operations.values()) / (len(OPERATIONS) - 1)
    assert set(operations) == set(OPERATIONS) - {ZERO}
    assert all(abs(n - expected) < 0.1 * expected for n in operations.values())
    # the last node (5 sources, 2 chosen): every source with probability 2/5
    last = collections.Counter(src for g in draws for _, src in g.nodes[-1])
    assert all(abs(last[src] / len(draws) - 0.4) < 0.04 for src in range(5))


def test_a_smaller_space_is_respected_and_an_empty_one_refused():
    small = searched(space=(ZERO, "identity", "sep_conv_3x3"))
    assert {op for seed in range(50) for op in random_genotype(small, seed).operations()} == {"identity",
                                                                                             "sep_conv_3x3"}
    only_zero = replace(small, search_space=(ZERO,))
    with pytest.raises(GenotypeError, match="no operation besides 'zero'"):
        random_genotype(only_zero, 0)
