"""The operation registry shared by the searchable and the discrete cell.

Every operation keeps channel count and spatial size. Adding an operation to the search space is adding
one entry to ``OPERATIONS``; the search cell, the discrete cell and the genotype all read it from here.

A builder gets ``(spec, channels, edges)``: the search cell runs the same operation for ``edges`` edges
leaving one node in a single call on ``edges * channels`` channels, so an operation must keep those
channel groups independent (depthwise and grouped convolutions, per-channel norms: InstanceNorm and
BatchNorm, not GroupNorm). The discrete cell uses ``edges=1``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nnunet_iac.cells.layer_spec import LayerSpec

ZERO = "zero"


class Zero(nn.Module):
    """'No connection': an edge that contributes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _depthwise_pointwise(spec: LayerSpec, channels: int, edges: int, kernel_size: int, dilation: int) -> list:
    total = channels * edges
    return [
        spec.activation(),
        spec.depthwise_conv(total, kernel_size, dilation),
        spec.conv(total, total, 1, groups=edges),
        spec.norm(total),
    ]


class SeparableConv(nn.Sequential):
    """Two rounds of nonlin -> depthwise conv -> pointwise conv -> norm (DARTS' sep_conv)."""

    def __init__(self, spec: LayerSpec, channels: int, kernel_size: int, edges: int = 1):
        super().__init__(*_depthwise_pointwise(spec, channels, edges, kernel_size, 1),
                         *_depthwise_pointwise(spec, channels, edges, kernel_size, 1))


class DilatedConv(nn.Sequential):
    """nonlin -> dilated depthwise conv -> pointwise conv -> norm (DARTS' dil_conv, dilation 2)."""

    def __init__(self, spec: LayerSpec, channels: int, kernel_size: int, edges: int = 1, dilation: int = 2):
        super().__init__(*_depthwise_pointwise(spec, channels, edges, kernel_size, dilation))


OperationBuilder = Callable[[LayerSpec, int, int], nn.Module]

OPERATIONS: dict[str, OperationBuilder] = {
    ZERO: lambda spec, c, e: Zero(),
    "identity": lambda spec, c, e: nn.Identity(),
    "max_pool_3x3": lambda spec, c, e: spec.pool("max", 3),
    "avg_pool_3x3": lambda spec, c, e: spec.pool("avg", 3),
    "sep_conv_3x3": lambda spec, c, e: SeparableConv(spec, c, 3, e),
    "sep_conv_5x5": lambda spec, c, e: SeparableConv(spec, c, 5, e),
    "dil_conv_3x3": lambda spec, c, e: DilatedConv(spec, c, 3, e),
    "dil_conv_5x5": lambda spec, c, e: DilatedConv(spec, c, 5, e),
}

PARAMETER_FREE = frozenset({ZERO, "identity", "max_pool_3x3", "avg_pool_3x3"})


def build_operation(name: str, spec: LayerSpec, channels: int, edges: int = 1) -> nn.Module:
    if name not in OPERATIONS:
        raise KeyError(f"Unknown cell operation '{name}'. Known operations: {', '.join(OPERATIONS)}.")
    return OPERATIONS[name](spec, channels, edges)


def search_space() -> tuple[str, ...]:
    """The operation names in registry order: the column order of alpha."""
    return tuple(OPERATIONS)
