import pytest
import torch
from torch import nn

from nnunet_iac.cells.architecture_parameters import ArchitectureParameters
from nnunet_iac.cells.topology import CellTopology, cell_width
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import search_space
from nnunet_iac.cells.search_cell import PartialChannelEdges, SearchCell, channel_shuffle


@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)], ids=["4d", "5d"])
def test_channel_shuffle_interleaves_groups(spatial):
    channels, groups = 8, 4
    x = torch.arange(channels, dtype=torch.float32).reshape(1, channels, *([1] * len(spatial)))
    x = x.expand(2, channels, *spatial).contiguous()
    y = channel_shuffle(x, groups)
    assert y.shape == x.shape
    assert y[(0, slice(None)) + (0,) * len(spatial)].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert torch.equal(y[1], y[0])


def test_channel_shuffle_rejects_indivisible_channels():
    with pytest.raises(ValueError, match="do not split"):
        channel_shuffle(torch.randn(1, 6, 4, 4), 4)


def test_topology_has_fourteen_edges_for_four_nodes():
    t = CellTopology()
    assert t.num_edges == 14
    assert t.edges()[:5] == [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1)]
    assert t.concat_nodes == (2, 3, 4, 5)


@pytest.mark.parametrize("skip,expected", [(32, 8), (64, 16), (320, 80), (8, 4), (20, 8)])
def test_cell_width_rule(skip, expected):
    assert cell_width(skip, partial_k=4, divisor=4) == expected


SPEC2D = LayerSpec(nn.Conv2d, nn.InstanceNorm2d, {"affine": True}, nn.LeakyReLU, {})


def test_mixed_op_only_touches_one_kth_of_the_channels():
    op = PartialChannelEdges(SPEC2D, 16, search_space(), partial_k=4)
    x = torch.randn(2, 16, 8, 8)
    weights = torch.softmax(torch.randn(1, len(search_space())), -1)
    (y,) = op(x, weights)
    # after the shuffle, bypassed channel c (c >= 4) of the input sits at a known position
    unshuffled = y.reshape(2, 4, 4, 8, 8).transpose(1, 2).reshape(2, 16, 8, 8)
    assert torch.equal(unshuffled[:, 4:], x[:, 4:])
    assert not torch.allclose(unshuffled[:, :4], x[:, :4])


@pytest.mark.parametrize("dim", [2, 3])
def test_grouped_edges_equal_separate_edges(dim):
    spec = SPEC2D if dim == 2 else LayerSpec(nn.Conv3d, nn.InstanceNorm3d, {"affine": True}, nn.LeakyReLU, {})
    edges = 3
    grouped = PartialChannelEdges(spec, 16, search_space(), 4, num_edges=edges)
    with torch.no_grad():
        for p in grouped.parameters():
            p.copy_(torch.randn_like(p))
    singles = [PartialChannelEdges(spec, 16, search_space(), 4, num_edges=1) for _ in range(edges)]
    for e, single in enumerate(singles):
        with torch.no_grad():
            for (name, p), (_, q) in zip(grouped.named_parameters(), single.named_parameters()):
                q.copy_(p.chunk(edges, dim=0)[e])
    x = torch.randn(2, 16, *([7] * dim))
    weights = torch.softmax(torch.randn(edges, len(search_space())), -1)
    together = grouped(x, weights)
    for e, single in enumerate(singles):
        (alone,) = single(x, weights[e:e + 1])
        assert torch.allclose(together[e], alone, atol=1e-5)


def test_beta_is_normalized_per_node():
    arch = ArchitectureParameters(CellTopology(), 8)
    with torch.no_grad():
        arch.beta.copy_(torch.randn(14))
    _, edge_weights = arch()
    t = CellTopology()
    for node in range(4):
        start = t.edge_offset(node)
        assert torch.isclose(edge_weights[start:start + 2 + node].sum(), torch.tensor(1.0))


@pytest.mark.parametrize("dim", [2, 3])
def test_search_cell_output_has_decoder_channel_count(dim):
    conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dim == 2 else (nn.Conv3d, nn.InstanceNorm3d)
    spec = LayerSpec(conv, norm, {"affine": True}, nn.LeakyReLU, {})
    topology = CellTopology()
    cell = SearchCell(spec, skip_channels=24, up_channels=24, width=8, topology=topology,
                      operation_names=search_space())
    arch = ArchitectureParameters(topology, len(search_space()))
    skip, up = torch.randn(2, 24, *([6] * dim)), torch.randn(2, 24, *([6] * dim))
    assert cell(skip, up, arch()).shape == (2, 48, *([6] * dim))
