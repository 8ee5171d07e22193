"""The fixed cell a genotype describes: only the chosen operations, on all channels."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.branching import CONCAT
from nnunet_iac.cells.frame import CellFrame
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import build_operation


class DiscreteCell(CellFrame):
    """Takes the neighbouring levels' features the genotype's ``branches`` name and this level has
    (``branch_channels``: the neighbours there are), added to the reduced skip or concatenated for the output
    projection."""

    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int, genotype: Genotype,
                 branch_channels: dict[str, int] | None = None):
        merges = genotype.branch_merges
        taken = {d: c for d, c in (branch_channels or {}).items() if d in merges}
        super().__init__(spec, skip_channels, up_channels, width, genotype.topology, taken,
                         tuple(d for d in taken if merges[d] == CONCAT))
        self.genotype = genotype
        self.node_ops = nn.ModuleList(
            nn.ModuleList(build_operation(op, spec, width) for op, _ in node) for node in genotype.nodes
        )

    def forward(self, skip: torch.Tensor, up: torch.Tensor, architecture=None,
                neighbours: dict[str, torch.Tensor] | None = None, branch_weights=None) -> torch.Tensor:
        states = self.input_states(skip, up)
        concatenated = []
        if self.takes_branches:
            for direction, branch in self.branch_states(neighbours, skip.shape[2:]).items():
                if direction in self.concat_slots:
                    concatenated.append(branch)
                else:
                    states[0] = states[0] + branch
        for ops, node in zip(self.node_ops, self.genotype.nodes):
            states.append(sum(op(states[src]) for op, (_, src) in zip(ops, node)))
        return self.project(states, concatenated)

    def feature_map_size(self, spatial_size) -> np.int64:
        voxels = np.prod(spatial_size, dtype=np.int64)
        edges = sum(len(node) for node in self.genotype.nodes)
        return super().feature_map_size(spatial_size) + voxels * self.width * edges
