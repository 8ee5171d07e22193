"""An operation left on some of the edges that leave a node is computed on those edges alone
(nnunet_iac/cells/edge_slicing.py): the same outputs and gradients as the grouped call over every edge, no
work and no gradient for the others, and the grouped call where a layer cannot be sliced."""
import pytest
import torch
from torch import nn

from nnunet_iac.cells import edge_slicing
from nnunet_iac.cells.edge_slicing import run_on_edges, sliceable
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import OPERATIONS, ZERO, build_operation
from nnunet_iac.cells.search_cell import PartialChannelEdges

NAMES = tuple(OPERATIONS)
SPECS = {2: LayerSpec(nn.Conv2d, nn.InstanceNorm2d, {"affine": True, "eps": 1e-5}, nn.LeakyReLU,
                      {"inplace": True}),
         3: LayerSpec(nn.Conv3d, nn.InstanceNorm3d, {"affine": True, "eps": 1e-5}, nn.LeakyReLU,
                      {"inplace": True})}
SPATIAL = {2: (12, 10), 3: (6, 8, 5)}


def _randomized(module: nn.Module) -> nn.Module:
    """Norm affine parameters away from 1/0, so that slicing the wrong rows shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
    return module


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", ["sep_conv_3x3", "dil_conv_5x5"])
@pytest.mark.parametrize("edges", [[0, 2], [1, 2], [3]])
def test_an_operation_run_on_some_edges_equals_those_edges_of_the_grouped_call(dim, name, edges):
    """In float64: with random weights the gradients of the first layers reach them through two instance norms
    and cancel, so in float32 they are off by as much as their own size (largest first-layer gradient 0.00082 in
    float32, 0.00187 in float64) and the sliced and grouped float32 calls differ beyond 1e-4 on some CPUs; in
    float64 the two agree exactly here."""
    channels, num_edges = 4, 4
    op = _randomized(build_operation(name, SPECS[dim], channels, num_edges)).double()
    x = torch.randn(2, channels * num_edges, *SPATIAL[dim], requires_grad=True, dtype=torch.float64)
    full = op(x).reshape(2, num_edges, channels, *SPATIAL[dim])
    picked = x.reshape(2, num_edges, channels, *SPATIAL[dim])[:, edges].reshape(2, -1, *SPATIAL[dim])
    sliced = run_on_edges(op, picked, edges, num_edges).reshape(2, len(edges), channels, *SPATIAL[dim])
    assert torch.allclose(sliced, full[:, edges], atol=1e-10)

    grads_full = torch.autograd.grad(full[:, edges].square().sum(), list(op.parameters()))
    grads_sliced = torch.autograd.grad(sliced.square().sum(), list(op.parameters()))
    for g_full, g_sliced in zip(grads_full, grads_sliced):
        assert torch.allclose(g_sliced, g_full, rtol=1e-9, atol=1e-9)
        rows = g_sliced.reshape(num_edges, -1)
        others = [e for e in range(num_edges) if e not in edges]
        assert torch.all(rows[others] == 0)


def test_norms_with_running_statistics_are_not_sliceable():
    spec = LayerSpec(nn.Conv2d, nn.BatchNorm2d, {}, nn.ReLU, {})
    assert not sliceable(build_operation("sep_conv_3x3", spec, 4, 3), 3)
    assert sliceable(build_operation("sep_conv_3x3", SPECS[2], 4, 3), 3)


def _mask(num_edges: int, left: dict[str, list[int]]) -> torch.Tensor:
    mask = torch.zeros(num_edges, len(NAMES), dtype=torch.bool)
    mask[:, NAMES.index(ZERO)] = True
    for name, edges in left.items():
        mask[edges, NAMES.index(name)] = True
    return mask


def _weights(mask: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(2)
    return torch.softmax(torch.randn(mask.shape).masked_fill(~mask, float("-inf")), dim=-1)


def test_the_search_cell_computes_an_operation_only_on_the_edges_it_is_left_on(monkeypatch):
    """One edge keeps sep_conv_3x3, another dil_conv_3x3, the third identity (the state a pruning search ends in):
    the outputs are those of the grouped calls, and each convolution runs on one edge's channels only."""
    torch.manual_seed(0)
    channels, k, num_edges = 8, 2, 3
    edges = _randomized(PartialChannelEdges(SPECS[2], channels, NAMES, partial_k=k, num_edges=num_edges))
    x = torch.randn(2, channels, 12, 10)
    mask = _mask(num_edges, {"sep_conv_3x3": [0], "dil_conv_3x3": [2], "identity": [1]})
    weights = _weights(mask)
    reference = edges(x, weights)

    seen = []
    convolution = edge_slicing._CONVOLUTIONS[2]
    monkeypatch.setitem(edge_slicing._CONVOLUTIONS, 2,
                        lambda t, *args: seen.append(t.shape[1]) or convolution(t, *args))
    edges.set_edge_mask(mask)
    out = edges(x, weights)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out, reference))
    assert seen and set(seen) == {channels // k}   # one edge's sampled channels, never three
    assert edges.computed_edges(NAMES.index("sep_conv_3x3")) == [0]
    assert edges.computed_edges(NAMES.index("identity")) == [0, 1, 2]   # parameter-free: once for all
    assert edges.computed_edges(NAMES.index("sep_conv_5x5")) == []

    sum(o.square().sum() for o in out).backward()
    pointwise = edges.ops[NAMES.index("sep_conv_3x3")][2].weight.grad.reshape(num_edges, -1)
    assert pointwise[0].abs().sum() > 0 and torch.all(pointwise[1:] == 0)
    assert all(p.grad is None for p in edges.ops[NAMES.index("sep_conv_5x5")].parameters())


def test_an_unsliceable_operation_is_computed_on_every_edge_with_the_same_result():
    torch.manual_seed(0)
    spec = LayerSpec(nn.Conv2d, nn.BatchNorm2d, {}, nn.ReLU, {})
    edges = PartialChannelEdges(spec, 8, NAMES, partial_k=2, num_edges=3)
    edges.eval()  # running statistics: the same normalisation on every call
    mask = _mask(3, {"sep_conv_3x3": [1]})
    x = torch.randn(2, 8, 12, 10)
    reference = edges(x, _weights(mask))
    edges.set_edge_mask(mask)
    assert NAMES.index("sep_conv_3x3") not in edges.only_on
    assert edges.computed_edges(NAMES.index("sep_conv_3x3")) == [0, 1, 2]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(edges(x, _weights(mask)), reference))


def test_an_edge_mask_of_the_wrong_shape_is_refused():
    edges = PartialChannelEdges(SPECS[2], 8, NAMES, partial_k=2, num_edges=3)
    with pytest.raises(ValueError, match="does not fit 3 edges"):
        edges.set_edge_mask(torch.ones(2, len(NAMES), dtype=torch.bool))


def test_edges_computed_alone_under_autocast_match_the_grouped_calls():
    """CPU autocast (bfloat16) stands in for CUDA's float16: the sliced and the grouped terms are summed in the
    same dtype and agree to bfloat16's precision."""
    torch.manual_seed(0)
    edges = _randomized(PartialChannelEdges(SPECS[2], 8, NAMES, partial_k=2, num_edges=3))
    mask = _mask(3, {"sep_conv_3x3": [0, 2], "sep_conv_5x5": [0, 1, 2], "dil_conv_3x3": [1]})
    x = torch.randn(2, 8, 12, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = edges(x, _weights(mask))
        edges.set_edge_mask(mask)
        out = edges(x, _weights(mask))
    assert sorted(edges.only_on) == [NAMES.index("sep_conv_3x3"), NAMES.index("dil_conv_3x3")]
    assert all(a.dtype == b.dtype and torch.allclose(a.float(), b.float(), atol=0.05, rtol=0.05)
               for a, b in zip(out, reference))


@pytest.mark.parametrize("dim", [2, 3])
def test_sliced_and_grouped_cells_agree_on_outputs_and_every_gradient(dim):
    """Operations left on edges with gaps between them (0 and 2), on one edge, on all: outputs and the gradients
    of the input, of alpha (through the masked softmax the search takes, so a pruned operation's weight is 0
    with no gradient) and of every parameter are the grouped call's."""
    channels, k, num_edges = 8, 2, 3
    mask = _mask(num_edges, {"sep_conv_3x3": [0, 2], "dil_conv_5x5": [1], "sep_conv_5x5": [0, 1, 2],
                             "identity": [1]})
    results = []
    for slicing in (True, False):
        torch.manual_seed(0)
        edges = _randomized(PartialChannelEdges(SPECS[dim], channels, NAMES, partial_k=k, num_edges=num_edges))
        edges.double()   # float64, as above: float32's cancellation through the norms is CPU-dependent
        if not slicing:
            edges.sliceable = [False] * len(NAMES)
        edges.set_edge_mask(mask)
        torch.manual_seed(3)
        x = torch.randn(2, channels, *SPATIAL[dim], requires_grad=True, dtype=torch.float64)
        alpha = torch.randn(mask.shape, generator=torch.Generator().manual_seed(2), requires_grad=True,
                            dtype=torch.float64)
        out = edges(x, torch.softmax(alpha.masked_fill(~mask, float("-inf")), dim=-1))
        sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape)).sum() for o in out).backward()
        results.append((out, x.grad, alpha.grad, [p.grad for p in edges.parameters()], sorted(edges.only_on)))
    sliced, grouped = results
    assert sliced[4] == [NAMES.index("sep_conv_3x3"), NAMES.index("dil_conv_5x5")] and grouped[4] == []
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(sliced[0], grouped[0]))
    assert torch.allclose(sliced[1], grouped[1], atol=1e-10)
    assert torch.allclose(sliced[2], grouped[2], atol=1e-10)
    for a, b in zip(sliced[3], grouped[3]):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, rtol=1e-9, atol=1e-9))


@pytest.mark.parametrize("layer", [nn.GroupNorm(2, 8, affine=False), nn.Dropout2d(0.5), nn.Softmax(dim=1),
                                   nn.ChannelShuffle(2), nn.GLU(dim=1), nn.PReLU()])
def test_layers_that_mix_drop_or_own_channels_are_not_sliceable(layer):
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert sliceable(nn.Sequential(conv, nn.LeakyReLU()), 2)
    assert not sliceable(nn.Sequential(conv, layer), 2)
