"""The fixed cell a genotype describes: only the chosen operations, on all channels."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.frame import CellFrame
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import build_operation


class DiscreteCell(CellFrame):
    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int, genotype: Genotype):
        super().__init__(spec, skip_channels, up_channels, width, genotype.topology)
        self.genotype = genotype
        self.node_ops = nn.ModuleList(
            nn.ModuleList(build_operation(op, spec, width) for op, _ in node) for node in genotype.nodes
        )

    def forward(self, skip: torch.Tensor, up: torch.Tensor, architecture=None) -> torch.Tensor:
        states = self.input_states(skip, up)
        for ops, node in zip(self.node_ops, self.genotype.nodes):
            states.append(sum(op(states[src]) for op, (_, src) in zip(ops, node)))
        return self.project(states)

    def feature_map_size(self, spatial_size) -> np.int64:
        voxels = np.prod(spatial_size, dtype=np.int64)
        edges = sum(len(node) for node in self.genotype.nodes)
        return super().feature_map_size(spatial_size) + voxels * self.width * edges
