"""What every cell shares, searchable or discrete: the two input reductions and the output projection.

A cell at a decoder level sees the encoder skip (C_skip channels) and the upsampled decoder features
(C_up channels). Both are reduced to the cell width by 1x1 convolutions; the concatenated last R nodes
are projected by a 1x1 convolution back to C_up + C_skip, the channel count the decoder stage's first
convolution was trained on. The output projection has a bias and no norm so that it can be zeroed,
which makes a residual implant start as the identity; an optional learnable gate (a scalar starting at 0)
does the same with a random projection (``nnunet_iac.cells.output_init``).

With branches (``cells.branching``) the frame also reduces the neighbouring levels' encoder features to the cell
width (``branch_reductions``, one per direction the cell takes); those merged by concatenation (``concat_slots``)
widen the output projection's input by one cell width each.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.branching import resample
from nnunet_iac.cells.topology import CellTopology
from nnunet_iac.cells.layer_spec import LayerSpec


class InputReduction(nn.Sequential):
    """nonlin -> 1x1 conv -> norm, as DARTS preprocesses cell inputs."""

    def __init__(self, spec: LayerSpec, in_channels: int, width: int):
        super().__init__(spec.activation(), spec.conv(in_channels, width, 1), spec.norm(width))
        self.in_channels = in_channels


class CellFrame(nn.Module):
    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int,
                 topology: CellTopology, branch_channels: dict[str, int] | None = None,
                 concat_slots: tuple[str, ...] = ()):
        super().__init__()
        self.width = width
        self.topology = topology
        self.out_channels = up_channels + skip_channels
        self.reduce_skip = InputReduction(spec, skip_channels, width)
        self.reduce_up = InputReduction(spec, up_channels, width)
        self.branch_reductions = nn.ModuleDict({direction: InputReduction(spec, channels, width)
                                                for direction, channels in (branch_channels or {}).items()})
        self.concat_slots = tuple(concat_slots)
        self.output_projection = spec.conv(width * (topology.concat_last + len(self.concat_slots)), self.out_channels,
                                           1, bias=True)
        self.output_gate = None

    @property
    def takes_branches(self) -> bool:
        return len(self.branch_reductions) > 0

    def input_states(self, skip: torch.Tensor, up: torch.Tensor) -> list[torch.Tensor]:
        return [self.reduce_skip(skip), self.reduce_up(up)]

    def branch_states(self, neighbours: dict[str, torch.Tensor], size) -> dict[str, torch.Tensor]:
        """Each neighbouring level's features this cell takes, at the cell's ``size`` and width."""
        return {direction: reduce(resample(neighbours[direction], size))
                for direction, reduce in self.branch_reductions.items()}

    def project(self, states: list[torch.Tensor], concatenated: list[torch.Tensor] = ()) -> torch.Tensor:
        """The output projection of the last nodes and of the branches merged by concatenation."""
        out = self.output_projection(torch.cat([states[i] for i in self.topology.concat_nodes] + list(concatenated),
                                               dim=1))
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
        """Activations the frame itself stores for one sample: the 2 reductions, the branches, nodes, output."""
        voxels = np.prod(spatial_size, dtype=np.int64)
        reductions = 2 + len(self.branch_reductions)
        return voxels * (self.width * (reductions + self.topology.num_nodes) + self.out_channels)
