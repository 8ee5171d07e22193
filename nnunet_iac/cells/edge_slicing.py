"""Run an operation built for several edges (one grouped call) on some of those edges only.

The search cell computes each operation with weights once for all the edges that leave a node, as one grouped
call (``PartialChannelEdges``). When a pruning search has left an operation on some of those edges only, the
grouped call would still compute it on the others and weigh them by 0: at the end of an LTH or Shapley search
(one operation per edge) that is about three times the work the mask leaves. Every layer of those operations
keeps each edge's channels apart (grouped and depthwise convolutions, per-channel norms, elementwise
nonlinearities), so each layer can run on the channel blocks of the edges the operation is left on: the same
parameters and the same result on those edges, the cost of those edges alone, and no gradient for the others'
blocks (as when they are weighted by 0).

An operation holding a layer this module cannot slice (a norm with running statistics, a transposed or
non-zero-padded convolution, a layer that mixes or drops channels such as GroupNorm, Softmax or Dropout,
anything not on the list of elementwise nonlinearities) is not sliceable; the cell then computes it on every
edge, as before.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from nnunet_iac.cells.depthwise_conv import run_in_layout

_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _layers(operation: nn.Module) -> list[nn.Module]:
    if isinstance(operation, nn.Sequential):
        return [layer for child in operation for layer in _layers(child)]
    return [operation]


# Nonlinearities that act on each value alone (no parameters, no randomness), whatever the channels around it.
_ELEMENTWISE = (nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus)


def _sliceable_layer(layer: nn.Module, num_edges: int) -> bool:
    if isinstance(layer, _ConvNd):
        return (not layer.transposed and layer.padding_mode == "zeros" and not isinstance(layer.padding, str)
                and layer.groups % num_edges == 0 and layer.out_channels % num_edges == 0)
    if isinstance(layer, _InstanceNorm):
        return not layer.track_running_stats and layer.num_features % num_edges == 0
    return isinstance(layer, _ELEMENTWISE)


def sliceable(operation: nn.Module, num_edges: int) -> bool:
    """Whether ``run_on_edges`` can run ``operation`` (built for ``num_edges`` edges) on a subset of them."""
    return all(_sliceable_layer(layer, num_edges) for layer in _layers(operation))


def _rows(tensor: torch.Tensor, edges, num_edges: int) -> torch.Tensor:
    """The blocks of dim 0 that belong to ``edges``."""
    return tensor.unflatten(0, (num_edges, -1))[edges].flatten(0, 1)


def _run_layer(layer: nn.Module, x: torch.Tensor, edges, num_edges: int) -> torch.Tensor:
    if isinstance(layer, _ConvNd):
        weight = _rows(layer.weight, edges, num_edges)
        bias = None if layer.bias is None else _rows(layer.bias, edges, num_edges)
        groups = layer.groups // num_edges * len(edges)
        convolution = _CONVOLUTIONS[len(layer.kernel_size)]
        return run_in_layout(layer, lambda t: convolution(t, weight, bias, layer.stride, layer.padding,
                                                          layer.dilation, groups), x)
    if isinstance(layer, _InstanceNorm):  # instance norm = group norm with one channel per group
        weight = _rows(layer.weight, edges, num_edges) if layer.affine else None
        bias = _rows(layer.bias, edges, num_edges) if layer.affine else None
        return F.group_norm(x, x.shape[1], weight, bias, layer.eps)
    return layer(x)


def run_on_edges(operation: nn.Module, x: torch.Tensor, edges, num_edges: int) -> torch.Tensor:
    """``operation`` (built for ``num_edges`` edges, ``sliceable``) on ``x``: the inputs of ``edges`` (sorted
    positions among the ``num_edges``, a list or an index tensor on ``x``'s device) side by side on the channel
    axis; returns their outputs the same way."""
    for layer in _layers(operation):
        x = _run_layer(layer, x, edges, num_edges)
    return x
