"""Depthwise convolutions that run channels-last on the CPU.

The cells' separable and dilated operations are depthwise convolutions. In PyTorch's default
(contiguous) layout their CPU backward pass is slow for any kernel but an undilated 3x3: measured on
2 cores, the fwd+bwd of a 5x5x5 depthwise conv on 9x8x40x56x40 took 2.69 s contiguous and 0.25 s
channels-last; the backward alone of a 5x5 one on 32x8x56x40 12.9 ms vs 2.9 ms. Converting around the convolution costs
two copies, far less; without gradients (prediction) the default layout is as fast and the copies
are skipped. Subclassing the base's conv class keeps the parameter names, so state_dict keys,
checkpoints and nnU-Net's weight initialization stay as they are. On other devices nothing changes.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def run_in_layout(module: nn.Module, convolution: Callable[[torch.Tensor], torch.Tensor],
                  x: torch.Tensor) -> torch.Tensor:
    """``convolution(x)`` channels-last when ``module`` is one of these convolutions, ``x`` is on the CPU and
    gradients are on; otherwise as it comes (also what ``cells.edge_slicing`` calls with a slice of the weights)."""
    memory_format = getattr(module, "memory_format", None)
    if memory_format is None or x.device.type != "cpu" or not torch.is_grad_enabled():
        return convolution(x)
    return convolution(x.contiguous(memory_format=memory_format)).contiguous()


class _ChannelsLastOnCPU:
    memory_format: torch.memory_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_in_layout(self, super().forward, x)


class DepthwiseConv2d(_ChannelsLastOnCPU, nn.Conv2d):
    memory_format = torch.channels_last


class DepthwiseConv3d(_ChannelsLastOnCPU, nn.Conv3d):
    memory_format = torch.channels_last_3d


_DEPTHWISE = {nn.Conv2d: DepthwiseConv2d, nn.Conv3d: DepthwiseConv3d}


def depthwise_conv_op(conv_op: type[nn.Module]) -> type[nn.Module]:
    """The channels-last-on-CPU variant of ``conv_op``; ``conv_op`` itself where there is none."""
    return _DEPTHWISE.get(conv_op, conv_op)
