"""The searchable cell: every edge a PC-DARTS partial-channel mixed operation (paper eq. 3-5)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.branching import ADD, CONCAT, DIRECTIONS, MERGES
from nnunet_iac.cells.edge_slicing import run_on_edges, sliceable
from nnunet_iac.cells.frame import CellFrame
from nnunet_iac.cells.topology import NUM_INPUTS, CellTopology
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import ZERO, build_operation


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups, for tensors of any spatial dimensionality (4-D, 5-D)."""
    batch, channels = x.shape[:2]
    if channels % groups:
        raise ValueError(f"channel_shuffle: {channels} channels do not split into {groups} groups.")
    spatial = x.shape[2:]
    x = x.reshape(batch, groups, channels // groups, *spatial).transpose(1, 2)
    return x.reshape(batch, channels, *spatial)


class PartialChannelEdges(nn.Module):
    """The PC-DARTS mixed operations of all ``num_edges`` edges that leave one node (paper eq. 3).

    On every edge 1/K of the channels go through the softmax(alpha)-weighted sum of the operations and
    the rest bypass; a channel shuffle follows. All edges leaving a node take the same first C/K
    channels, so parameter-free operations are computed once for all of them and each operation with
    weights runs as one grouped call over the edges (same result as separate calls, far fewer kernels).
    The zero op contributes nothing to the sum and is not computed; its alpha still acts via the softmax.
    An operation pruned from every edge of the group (``set_active``, ``set_edge_mask``) is not computed either:
    a pruning search gets cheaper as it prunes. One pruned from some of the edges only is computed on the others
    alone (``cells.edge_slicing``; an operation that cannot be sliced is computed on every edge, weighted 0 where
    pruned).
    """

    def __init__(self, spec: LayerSpec, channels: int, operation_names: tuple[str, ...], partial_k: int,
                 num_edges: int = 1):
        super().__init__()
        if channels % partial_k:
            raise ValueError(f"Cell width {channels} is not divisible by K={partial_k}.")
        self.partial_k = partial_k
        self.num_edges = num_edges
        self.sampled = channels // partial_k
        self.ops = nn.ModuleList(build_operation(name, spec, self.sampled, num_edges) for name in operation_names)
        self.computed = [i for i, name in enumerate(operation_names) if name != ZERO]
        self.shared = [not any(True for _ in self.ops[i].parameters()) for i in range(len(self.ops))]
        self.sliceable = [sliceable(op, num_edges) for op in self.ops]
        self.active = list(self.computed)
        self.only_on = {}  # operation -> the edges (positions) it is computed on, where not every edge
        self._edge_index = {}  # (operation, device) -> only_on[operation] as a tensor, made once per mask
        self._edge_mask = torch.ones(num_edges, len(self.ops), dtype=torch.bool)

    def set_active(self, operations) -> None:
        """Compute only these operations (indices; the zero operation is never computed), on every edge."""
        keep = {int(i) for i in operations}
        mask = torch.zeros_like(self._edge_mask)
        mask[:, [i for i in range(len(self.ops)) if i in keep]] = True
        self.set_edge_mask(mask)

    def set_edge_mask(self, mask: torch.Tensor) -> None:
        """Compute on each edge (row) only the operations (columns) ``mask`` leaves it: an operation left on no
        edge not at all, one left on some edges on those alone where it can be sliced."""
        mask = torch.as_tensor(mask, dtype=torch.bool).cpu()
        if mask.shape != self._edge_mask.shape:
            raise ValueError(f"An edge mask of shape {tuple(mask.shape)} does not fit {self.num_edges} edges x "
                             f"{len(self.ops)} operations.")
        self._edge_mask = mask.clone()
        self.active = [i for i in self.computed if bool(mask[:, i].any())]
        self.only_on = {i: torch.nonzero(mask[:, i]).flatten().tolist() for i in self.active
                        if not self.shared[i] and self.sliceable[i] and not bool(mask[:, i].all())}
        self._edge_index = {}

    @property
    def edge_mask(self) -> torch.Tensor:
        """The (edges x operations) mask last set (all True by default)."""
        return self._edge_mask.clone()

    def computed_edges(self, operation: int) -> list[int]:
        """The edges (positions) ``operation`` is computed on (all of them for a parameter-free one: it is
        computed once for all)."""
        if operation not in self.active:
            return []
        return self.only_on.get(operation, list(range(self.num_edges)))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
        """``weights``: softmax(alpha) of the edges, shape (num_edges, ops); returns one tensor per edge."""
        sampled, bypass = x[:, :self.sampled], x[:, self.sampled:]
        batch, spatial = x.shape[0], x.shape[2:]
        grouped_shape = (batch, self.num_edges, self.sampled, *spatial)
        broadcast = (1, self.num_edges, 1, *([1] * len(spatial)))
        repeated = None
        mixed = torch.zeros(grouped_shape, dtype=x.dtype, device=x.device) if not self.active else 0
        for i in self.active:
            if i in self.only_on:
                mixed = self._add_on_edges(mixed, i, sampled, weights, grouped_shape)
                continue
            if self.shared[i]:
                out = self.ops[i](sampled).unsqueeze(1)
            else:
                if repeated is None:
                    repeated = sampled.repeat(1, self.num_edges, *([1] * len(spatial)))
                out = self.ops[i](repeated).reshape(grouped_shape)
            mixed = mixed + weights[:, i].reshape(broadcast) * out
        return [channel_shuffle(torch.cat([mixed[:, e], bypass], dim=1), self.partial_k)
                for e in range(self.num_edges)]

    def _add_on_edges(self, mixed, operation: int, sampled: torch.Tensor, weights: torch.Tensor,
                      grouped_shape: tuple) -> torch.Tensor:
        """``mixed`` plus ``operation`` weighted on the edges it is left on, computed on those alone."""
        index = self._index(operation, sampled.device)
        num_on = len(index)
        inputs = sampled if num_on == 1 else sampled.repeat(1, num_on, *([1] * (sampled.dim() - 2)))
        out = run_on_edges(self.ops[operation], inputs, index, self.num_edges)
        out = out.reshape(sampled.shape[0], num_on, *grouped_shape[2:])
        term = weights[index, operation].reshape(1, num_on, *([1] * (len(grouped_shape) - 2))) * out
        if not isinstance(mixed, torch.Tensor):
            mixed = term.new_zeros(grouped_shape)
        return mixed.index_add(1, index, term.to(mixed.dtype))

    def _index(self, operation: int, device: torch.device) -> torch.Tensor:
        """``only_on[operation]`` as a tensor on ``device``, copied there once per mask, not at every forward (a
        copy from host memory would make every CUDA forward wait)."""
        key = (operation, device)
        if key not in self._edge_index:
            self._edge_index[key] = torch.tensor(self.only_on[operation], device=device)
        return self._edge_index[key]


class SearchCell(CellFrame):
    """With ``branch_channels`` (branching on) the cell takes every neighbouring level there is, each merged by
    the softmax of ``branch_alpha``: added to the reduced skip with its ``add`` weight, concatenated for the
    output projection with its ``concat`` weight (its ``none`` weight does neither)."""

    def __init__(self, spec: LayerSpec, skip_channels: int, up_channels: int, width: int,
                 topology: CellTopology, operation_names: tuple[str, ...], partial_k: int = 4,
                 branch_channels: dict[str, int] | None = None):
        branch_channels = dict(branch_channels or {})
        super().__init__(spec, skip_channels, up_channels, width, topology, branch_channels, tuple(branch_channels))
        self.operation_names = tuple(operation_names)
        self.sources = nn.ModuleList(
            PartialChannelEdges(spec, width, self.operation_names, partial_k, len(self.targets(src)))
            for src in range(NUM_INPUTS + topology.num_nodes - 1)
        )

    def apply_operation_mask(self, mask: torch.Tensor) -> None:
        """Compute, for the edges leaving each node, only the operations the mask (edges x ops) leaves on one of
        them, each on the edges it is left on (``ArchitectureParameters.set_operation_mask`` zeroes the rest's
        weights)."""
        for src, edges in enumerate(self.sources):
            rows = [self.topology.edge_offset(node) + src for node in self.targets(src)]
            edges.set_edge_mask(torch.as_tensor(mask)[rows])

    def targets(self, src: int) -> range:
        """Intermediate nodes fed by graph node ``src``."""
        return range(max(0, src - NUM_INPUTS + 1), self.topology.num_nodes)

    def forward(self, skip: torch.Tensor, up: torch.Tensor, architecture: tuple[torch.Tensor, torch.Tensor],
                neighbours: dict[str, torch.Tensor] | None = None,
                branch_weights: torch.Tensor | None = None) -> torch.Tensor:
        op_weights, edge_weights = architecture
        states = self.input_states(skip, up)
        concatenated = []
        if self.takes_branches:
            for direction, branch in self.branch_states(neighbours, skip.shape[2:]).items():
                weights = branch_weights[DIRECTIONS.index(direction)]
                states[0] = states[0] + weights[MERGES.index(ADD)] * branch
                concatenated.append(weights[MERGES.index(CONCAT)] * branch)
        pending = [0] * self.topology.num_nodes
        for src, edges in enumerate(self.sources):
            if src >= NUM_INPUTS:
                states.append(pending[src - NUM_INPUTS])
            targets = self.targets(src)
            rows = [self.topology.edge_offset(node) + src for node in targets]
            for node, row, out in zip(targets, rows, edges(states[src], op_weights[rows])):
                pending[node] = pending[node] + edge_weights[row] * out
        states.append(pending[-1])
        return self.project(states, concatenated)

    def feature_map_size(self, spatial_size) -> np.int64:
        voxels = np.prod(spatial_size, dtype=np.int64)
        per_edge = sum((sum(len(s.computed_edges(i)) for i in s.active) + s.partial_k * s.num_edges) * s.sampled
                       for s in self.sources)
        return super().feature_map_size(spatial_size) + voxels * per_edge
