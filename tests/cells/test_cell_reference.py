"""The cells against references written out by hand, so that a wrong sum, channel order, edge row or input
source in the library cannot be mirrored by the same mistake on the other side of the comparison.

The parameter-free operations are computed here with torch.nn.functional (stride 1, padding 1, average pooling
without the padded zeros), not through the operation registry, so swapping two of them is caught too.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.cells.discrete_cell import DiscreteCell
from nnunet_iac.cells.genotype import Genotype, derive_genotype
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import search_space
from nnunet_iac.cells.search_cell import PartialChannelEdges, SearchCell

SPEC = LayerSpec(nn.Conv2d, nn.InstanceNorm2d, {"affine": True}, nn.LeakyReLU, {})
PARAMETER_FREE_REFERENCE = {
    "zero": lambda x: torch.zeros_like(x),
    "identity": lambda x: x,
    "max_pool_3x3": lambda x: F.max_pool2d(x, 3, stride=1, padding=1),
    "avg_pool_3x3": lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False),
}


def randomize(module: nn.Module) -> nn.Module:
    """Random weights everywhere (a zeroed projection or unit norm would hide mistakes)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
    return module


def shuffled_by_index(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel shuffle written as an index list: output channel j*groups + g is input channel g*(C/groups) + j."""
    per_group = x.shape[1] // groups
    return x[:, [g * per_group + j for j in range(per_group) for g in range(groups)]]


def test_one_mixed_edge_is_the_softmax_weighted_sum_on_one_kth_then_shuffled():
    names, k, channels = search_space(), 4, 16
    edge = randomize(PartialChannelEdges(SPEC, channels, names, k))
    x = torch.randn(2, channels, 9, 7)
    weights = torch.softmax(torch.randn(1, len(names)), -1)
    sampled = x[:, :channels // k]
    mixed = 0
    for i, (name, op) in enumerate(zip(names, edge.ops)):
        reference_op = PARAMETER_FREE_REFERENCE.get(name, op)
        mixed = mixed + weights[0, i] * reference_op(sampled)
    expected = shuffled_by_index(torch.cat([mixed, x[:, channels // k:]], dim=1), k)
    (got,) = edge(x, weights)
    assert torch.allclose(got, expected, atol=1e-5)


def test_discrete_cell_reads_each_edge_from_its_genotype_input():
    genotype = Genotype.from_dict({
        "format": "nnunet-iac-genotype", "version": 1, "concat": [2, 3, 4, 5],
        "nodes": [[{"op": "max_pool_3x3", "input": 0}, {"op": "identity", "input": 1}],
                  [{"op": "avg_pool_3x3", "input": 1}, {"op": "max_pool_3x3", "input": 2}],
                  [{"op": "identity", "input": 0}, {"op": "avg_pool_3x3", "input": 3}],
                  [{"op": "sep_conv_3x3", "input": 2}, {"op": "max_pool_3x3", "input": 4}]]})
    cell = randomize(DiscreteCell(SPEC, skip_channels=12, up_channels=6, width=8, genotype=genotype)).eval()
    skip, up = torch.randn(2, 12, 10, 8), torch.randn(2, 6, 10, 8)
    maxp, avgp = PARAMETER_FREE_REFERENCE["max_pool_3x3"], PARAMETER_FREE_REFERENCE["avg_pool_3x3"]
    with torch.no_grad():
        s0, s1 = cell.reduce_skip(skip), cell.reduce_up(up)
        s2 = maxp(s0) + s1
        s3 = avgp(s1) + maxp(s2)
        s4 = s0 + avgp(s3)
        s5 = cell.node_ops[3][0](s2) + maxp(s4)
        expected = cell.output_projection(torch.cat([s2, s3, s4, s5], dim=1))
        got = cell(skip, up)
    assert got.shape == (2, 18, 10, 8)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_cell_on_one_hot_weights_is_the_discrete_cell_of_the_derived_genotype(seed):
    """One-hot op weights and 0/1 edge weights make the supernet one discrete cell; with K=1 (no bypass, no
    shuffle) it must equal the DiscreteCell of the genotype derive_genotype reads off the same weights, which
    ties SearchCell's edge rows, derive_genotype's rows and DiscreteCell's input sources together."""
    generator = torch.Generator().manual_seed(seed)
    names = ("zero", "identity", "max_pool_3x3", "avg_pool_3x3")
    topology = CellTopology()
    search = randomize(SearchCell(SPEC, 8, 8, 8, topology, names, partial_k=1)).eval()
    op_weights = torch.zeros(topology.num_edges, len(names))
    edge_weights = torch.zeros(topology.num_edges)
    for node in range(topology.num_nodes):
        offset = topology.edge_offset(node)
        sources = topology.node_inputs(node)
        chosen = torch.randperm(len(sources), generator=generator)[:2].tolist()
        for src in sources:
            op = int(torch.randint(1, len(names), (1,), generator=generator))
            op_weights[offset + src, op] = 1.0
            edge_weights[offset + src] = 1.0 if src in chosen else 0.0
    genotype = derive_genotype(op_weights, edge_weights, topology, names)
    assert all({src for _, src in node} == {s for s in topology.node_inputs(j) if edge_weights[
        topology.edge_offset(j) + s] == 1.0} for j, node in enumerate(genotype.nodes))
    discrete = DiscreteCell(SPEC, 8, 8, 8, genotype).eval()
    discrete.load_state_dict({k: v for k, v in search.state_dict().items() if not k.startswith("sources.")})
    skip, up = torch.randn(2, 8, 9, 9, generator=generator), torch.randn(2, 8, 9, 9, generator=generator)
    with torch.no_grad():
        assert torch.allclose(search(skip, up, (op_weights, edge_weights)), discrete(skip, up), atol=1e-5)
