"""The searchable cell: every edge a PC-DARTS partial-channel mixed operation (paper eq. 3-5)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cell_frame import CellFrame
from nnunet_iac.cell_topology import CellTopology
from nnunet_iac.layer_spec import LayerSpec
from nnunet_iac.operations import ZERO, build_operation


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups, for tensors of any spatial dimensionality (4-D, 5-D)."""
    batch, channels = x.shape[:2]
    if channels % groups:
        raise ValueError(f"channel_shuffle: {channels} channels do not split into {groups} groups.")
    spatial = x.shape[2:]
    x = x.reshape(batch, groups, channels // groups, *spatial).transpose(1, 2)
    return x.reshape(batch, channels, *spatial)


class PartialChannelMixedOp(nn.Module):
    """1/K of the channels go through the weighted sum of all operations, the rest bypass.

    Taking the first C/K channels and shuffling afterwards is how PC-DARTS samples channels: each edge
    in a chain sees a different slice of the original channels. The zero op contributes nothing to the
    sum, so it is not computed; its alpha still acts through the softmax.
    """

    def __init__(self, spec: LayerSpec, channels: int, operation_names: tuple[str, ...], partial_k: int):
        super().__init__()
        if channels % partial_k:
            raise ValueError(f"Cell width {channels} is not divisible by K={partial_k}.")
        self.partial_k = partial_k
        self.sampled = channels // partial_k
        self.computed = [i for i, name in enumerate(operation_names) if name != ZERO]
        self.ops = nn.ModuleList(build_operation(name, spec, self.sampled) for name in operation_names)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        sampled, bypass = x[:, :self.sampled], x[:, self.sampled:]
        mixed = sum(weights[i] * self.ops[i](sampled) for i in self.computed)
        return channel_shuffle(torch.cat([mixed, bypass], dim=1), self.partial_k)


class SearchCell(CellFrame):
    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int,
                 topology: CellTopology, operation_names: tuple[str, ...], partial_k: int = 4):
        super().__init__(spec, skip_channels, up_channels, width, topology)
        self.operation_names = tuple(operation_names)
        self.edges = nn.ModuleList(
            PartialChannelMixedOp(spec, width, self.operation_names, partial_k)
            for _ in range(topology.num_edges)
        )

    def forward(self, skip: torch.Tensor, up: torch.Tensor,
                architecture: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        op_weights, edge_weights = architecture
        states = self.input_states(skip, up)
        for node in range(self.topology.num_nodes):
            offset = self.topology.edge_offset(node)
            states.append(sum(
                edge_weights[offset + i] * self.edges[offset + i](state, op_weights[offset + i])
                for i, state in enumerate(states)
            ))
        return self.project(states)

    def feature_map_size(self, spatial_size) -> np.int64:
        voxels = np.prod(spatial_size, dtype=np.int64)
        per_edge = (len(self.edges[0].computed) + self.edges[0].partial_k) * self.edges[0].sampled
        return super().feature_map_size(spatial_size) + voxels * per_edge * len(self.edges)
