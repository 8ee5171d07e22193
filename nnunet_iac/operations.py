"""The operation registry shared by the searchable and the discrete cell.

Every operation keeps channel count and spatial size. Adding an operation to the search space is adding
one entry to ``OPERATIONS``; the search cell, the discrete cell and the genotype all read it from here.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nnunet_iac.layer_spec import LayerSpec

ZERO = "zero"


class Zero(nn.Module):
    """'No connection': an edge that contributes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class SeparableConv(nn.Sequential):
    """Two rounds of nonlin -> depthwise conv -> pointwise conv -> norm (DARTS' sep_conv)."""

    def __init__(self, spec: LayerSpec, channels: int, kernel_size: int):
        layers = []
        for _ in range(2):
            layers += [
                spec.activation(),
                spec.conv(channels, channels, kernel_size, groups=channels),
                spec.conv(channels, channels, 1),
                spec.norm(channels),
            ]
        super().__init__(*layers)


class DilatedConv(nn.Sequential):
    """nonlin -> dilated depthwise conv -> pointwise conv -> norm (DARTS' dil_conv, dilation 2)."""

    def __init__(self, spec: LayerSpec, channels: int, kernel_size: int, dilation: int = 2):
        super().__init__(
            spec.activation(),
            spec.conv(channels, channels, kernel_size, dilation=dilation, groups=channels),
            spec.conv(channels, channels, 1),
            spec.norm(channels),
        )


OperationBuilder = Callable[[LayerSpec, int], nn.Module]

OPERATIONS: dict[str, OperationBuilder] = {
    ZERO: lambda spec, c: Zero(),
    "identity": lambda spec, c: nn.Identity(),
    "max_pool_3x3": lambda spec, c: spec.pool("max", 3),
    "avg_pool_3x3": lambda spec, c: spec.pool("avg", 3),
    "sep_conv_3x3": lambda spec, c: SeparableConv(spec, c, 3),
    "sep_conv_5x5": lambda spec, c: SeparableConv(spec, c, 5),
    "dil_conv_3x3": lambda spec, c: DilatedConv(spec, c, 3),
    "dil_conv_5x5": lambda spec, c: DilatedConv(spec, c, 5),
}

PARAMETER_FREE = frozenset({ZERO, "identity", "max_pool_3x3", "avg_pool_3x3"})


def build_operation(name: str, spec: LayerSpec, channels: int) -> nn.Module:
    if name not in OPERATIONS:
        raise KeyError(f"Unknown cell operation '{name}'. Known operations: {', '.join(OPERATIONS)}.")
    return OPERATIONS[name](spec, channels)


def search_space() -> tuple[str, ...]:
    """The operation names in registry order: the column order of alpha."""
    return tuple(OPERATIONS)
