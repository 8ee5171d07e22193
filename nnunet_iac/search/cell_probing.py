"""Probe every convolution of the implanted cells, per level, edge and operation (issue 17).

DARTS-ADP's diagnosis of a search whose operations do not learn is a probe of each convolution's weights
(nnunet_iac/search/probing.py: stable rank and condition of the EVBMF low-rank part). Here it is applied to
the cells of an implanted network, searchable or discrete:

- a searchable cell runs one operation for all edges leaving a node as one grouped convolution
  (nnunet_iac/cells/search_cell.py), so the weight of edge ``j`` is the ``j``-th block of output channels;
  each edge's block is probed on its own, and only on the edges it is computed on (a pruned operation's
  blocks are left out; an operation the cell cannot slice, ``cells.edge_slicing``, is computed and probed on
  every edge of a node where it is left on one);
- a discrete cell's operation on an edge is its own module;
- the frame's convolutions (input reductions, output projection) are rows of their own, operation ``frame``.

A row is one weight (a convolution, or one edge's block of it), with the name of the module it is in:
Adas (nnunet_iac/search/adas.py) sets one learning rate per module, from the mean of its rows.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn

from nnunet_iac.cells.discrete_cell import DiscreteCell
from nnunet_iac.cells.search_cell import SearchCell
from nnunet_iac.network.implant import implanted_decoder
from nnunet_iac.search.probing import probe_convolution

FRAME = "frame"
_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ProbeRow:
    level: int            # decoder stage (0 = lowest resolution)
    node: int | None      # intermediate node the edge feeds (None: the frame)
    source: int | None    # graph node the edge leaves
    operation: str
    layer: str            # the convolution inside the operation, e.g. "1" (its index in the Sequential)
    module: str           # the convolution's name in the network (Adas' unit)
    stable_rank: float
    condition: float
    kept: int

    def to_dict(self) -> dict:
        row = asdict(self)
        row["condition"] = None if math.isnan(self.condition) else self.condition
        return row


def _convolutions(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_modules():
        if isinstance(child, _CONVOLUTIONS):
            yield name, child


def _frame_weights(level: int, cell: nn.Module, prefix: str):
    for part in ("reduce_skip", "reduce_up", "output_projection"):
        for name, conv in _convolutions(getattr(cell, part)):
            yield (level, None, None, FRAME, f"{part}.{name}" if name else part,
                   f"{prefix}.{part}.{name}" if name else f"{prefix}.{part}", conv.weight)


def _search_cell_weights(level: int, cell: SearchCell, prefix: str):
    for src, edges in enumerate(cell.sources):
        for i in edges.active:
            if edges.shared[i]:
                continue
            computed = set(edges.computed_edges(i))
            for name, conv in _convolutions(edges.ops[i]):
                blocks = conv.weight.shape[0] // edges.num_edges
                for j, node in enumerate(cell.targets(src)):
                    if j not in computed:
                        continue
                    yield (level, node, src, cell.operation_names[i], name, f"{prefix}.sources.{src}.ops.{i}.{name}",
                           conv.weight[j * blocks:(j + 1) * blocks])


def _discrete_cell_weights(level: int, cell: DiscreteCell, prefix: str):
    for node, (ops, choices) in enumerate(zip(cell.node_ops, cell.genotype.nodes)):
        for k, (op, (name, src)) in enumerate(zip(ops, choices)):
            for layer, conv in _convolutions(op):
                yield level, node, src, name, layer, f"{prefix}.node_ops.{node}.{k}.{layer}", conv.weight


def cell_weights(network: nn.Module):
    """(level, node, source, operation, layer, module name, weight) of every convolution weight in the cells."""
    decoder = implanted_decoder(network)
    for index, (level, cell) in enumerate(zip(decoder.iac_cell_levels, decoder.iac_cells)):
        prefix = f"decoder.iac_cells.{index}"
        yield from _frame_weights(level, cell, prefix)
        if isinstance(cell, SearchCell):
            yield from _search_cell_weights(level, cell, prefix)
        elif isinstance(cell, DiscreteCell):
            yield from _discrete_cell_weights(level, cell, prefix)


@torch.no_grad()
def probe_cells(network: nn.Module) -> list[ProbeRow]:
    """One row per convolution weight of the cells (per edge in a searchable cell)."""
    rows = []
    for level, node, source, operation, layer, module, weight in cell_weights(network):
        probe = probe_convolution(weight)
        rows.append(ProbeRow(level, node, source, operation, layer, module, probe.stable_rank, probe.condition,
                             probe.kept))
    return rows


def module_gains(rows: list[ProbeRow]) -> dict[str, float]:
    """Mean stable rank per convolution module (the edges' blocks of a grouped one together)."""
    gains: dict[str, list[float]] = {}
    for row in rows:
        gains.setdefault(row.module, []).append(row.stable_rank)
    return {name: statistics.mean(values) for name, values in gains.items()}


def operation_summary(rows: list[ProbeRow]) -> dict[str, dict]:
    """Per operation (and ``frame``): rows, mean stable rank, share of rows with no component above noise."""
    groups: dict[str, list[ProbeRow]] = {}
    for row in rows:
        groups.setdefault(row.operation, []).append(row)
    return {op: {"rows": len(members), "stable_rank": statistics.mean(r.stable_rank for r in members),
                 "all_noise": sum(r.kept == 0 for r in members) / len(members)}
            for op, members in groups.items()}
