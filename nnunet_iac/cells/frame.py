"""What every cell shares, searchable or discrete: the two input reductions and the output projection.

A cell at a decoder level sees the encoder skip (C_skip channels) and the upsampled decoder features
(C_up channels). Both are reduced to the cell width by 1x1 convolutions; the concatenated last R nodes
are projected by a 1x1 convolution back to C_up + C_skip, the channel count the decoder stage's first
convolution was trained on. The output projection has a bias and no norm so that it can be zeroed,
which makes a residual implant start as the identity; an optional learnable gate (a scalar starting at 0)
does the same with a random projection (``nnunet_iac.cells.output_init``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.cells.layer_spec import LayerSpec


class InputReduction(nn.Sequential):
    """nonlin -> 1x1 conv -> norm, as DARTS preprocesses cell inputs."""

    def __init__(self, spec: LayerSpec, in_channels: int, width: int):
        super().__init__(spec.activation(), spec.conv(in_channels, width, 1), spec.norm(width))


class CellFrame(nn.Module):
    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int,
                 topology: CellTopology):
        super().__init__()
        self.width = width
        self.topology = topology
        self.out_channels = up_channels + skip_channels
        self.reduce_skip = InputReduction(spec, skip_channels, width)
        self.reduce_up = InputReduction(spec, up_channels, width)
        self.output_projection = spec.conv(width * topology.concat_last, self.out_channels, 1, bias=True)
        self.output_gate = None

    def input_states(self, skip: torch.Tensor, up: torch.Tensor) -> list[torch.Tensor]:
        return [self.reduce_skip(skip), self.reduce_up(up)]

    def project(self, states: list[torch.Tensor]) -> torch.Tensor:
        out = self.output_projection(torch.cat([states[i] for i in self.topology.concat_nodes], dim=1))
        return out if self.output_gate is None else self.output_gate * out

    def zero_output(self) -> None:
        """Make the cell output exactly zero until its projection is trained."""
        nn.init.zeros_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)

    def add_output_gate(self) -> None:
        """A learnable scalar on the output, starting at 0 (ReZero): the cell output is exactly zero, yet the
        gate's gradient (upstream gradient . ungated output) is not. 0-dimensional, so under fp16 autocast it
        scales the output without promoting it to fp32."""
        self.output_gate = nn.Parameter(torch.zeros(()))

    def feature_map_size(self, spatial_size) -> np.int64:
        """Activations the frame itself stores for one sample: the 2 reductions + nodes + output."""
        voxels = np.prod(spatial_size, dtype=np.int64)
        return voxels * (self.width * (2 + self.topology.num_nodes) + self.out_channels)
