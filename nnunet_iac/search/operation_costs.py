"""What each candidate operation costs at each decoder level, and the supernet's expected cost under alpha/beta.

Users pay for the cells at every prediction (issue 18: ``nnUNetv2_predict`` with IAC took 1.22-1.66x the
base's time here). A cost-aware search needs, per level and operation, what the *discrete* cell would pay:
the operation built at the cell's full width (no partial channels), on one prediction patch's feature map
at that level. Three measures:

- ``parameters``: the operation's parameter count;
- ``flops``: multiply-adds x 2 of its convolutions (pooling and identity count 0), from forward hooks;
- ``latency``: median wall time (ms) of its forward at prediction batch size 1, on the device in use, after
  one warm-up call (noisy on a loaded CPU; the table records the device it was measured on).

Besides the operations, each level has a ``frame`` row: what every cell pays whatever its genotype, its two
input reductions and its output projection (``cells.frame``) on the same feature maps. Issue 18 measured that
prediction with cells at fewer levels is faster at equal operations (1.24-1.39x the base's time against
1.48-1.57x): on a CPU at batch 1 a cell costs per module call, most of it in its frame, so a cost that leaves
the frame out cannot see what leaving a level out saves.

The table is cached as ``operation_costs.json`` in the fold folder. ``expected_cost`` is differentiable in
alpha and beta: sum over edges of beta's edge weight times alpha's operation weights times the operation's
cost summed over the levels (alpha and beta are shared by the levels), divided by the cost of the most
expensive operation on every edge, so that 1 means "every edge as expensive as it can be" whatever the unit.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.operations import build_operation
from nnunet_iac.network.implant import implanted_decoder

COST_FILE = "operation_costs.json"
#: the row of a level that holds the cell's fixed parts (reductions, projection), not an operation
FRAME = "frame"
#: tables written before the frame rows existed carry no version and are measured again
TABLE_VERSION = 2
MEASURES = ("parameters", "flops", "latency")
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class OperationCost:
    level: int
    operation: str
    width: int
    spatial_size: tuple
    parameters: int
    flops: int
    latency: float


def level_spatial_sizes(network: nn.Module, patch_size) -> list[tuple]:
    """Feature-map size of each decoder level's skip (level 0 is the lowest resolution), for one patch."""
    strides = implanted_decoder(network).encoder.strides
    sizes, size = [], list(patch_size)
    for stride in strides[:-1]:
        stride = stride if isinstance(stride, (list, tuple)) else [stride] * len(size)
        size = [s // k for s, k in zip(size, stride)]
        sizes.append(tuple(size))
    return sizes[::-1]


def conv_flops(module: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-adds of every convolution ``module`` runs on ``x``."""
    total = []

    def count(conv, _inputs, output):
        kernel = int(np.prod(conv.kernel_size)) * conv.in_channels // conv.groups
        total.append(2 * output.numel() * kernel)

    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, CONV_TYPES)]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return int(sum(total))


def latency_ms(module: nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        module(x)
        times = []
        for _ in range(repeats):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            module(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            times.append(1000 * (time.perf_counter() - start))
    return float(statistics.median(times))


def frame_cost(cell: nn.Module, level: int, size: tuple, device: torch.device, repeats: int) -> OperationCost:
    """The ``frame`` row of a level: the cell's two input reductions and its output projection, each on a
    feature map of its own input's shape, summed (parameters, FLOPs and latency)."""
    voxels = (1, *size)
    parts = [(cell.reduce_skip, cell.reduce_skip.in_channels), (cell.reduce_up, cell.reduce_up.in_channels),
             (cell.output_projection, cell.output_projection.in_channels)]
    parameters, flops, latency = 0, 0, 0.0
    for module, channels in parts:
        module = copy.deepcopy(module).to(device).eval()
        x = torch.randn(voxels[0], channels, *voxels[1:], device=device)
        parameters += sum(p.numel() for p in module.parameters())
        flops += conv_flops(module, x)
        latency += latency_ms(module, x, repeats)
    return OperationCost(level, FRAME, cell.width, tuple(size), parameters, flops, latency)


def measure_costs(network: nn.Module, patch_size, device: torch.device, repeats: int = 5) -> list[OperationCost]:
    """The cost of every operation of the search space, and of the cell's frame, at every level of an implanted
    network."""
    decoder = implanted_decoder(network)
    spec = LayerSpec.from_encoder(decoder.encoder)
    rows = []
    sizes = level_spatial_sizes(network, patch_size)
    for level, cell in zip(decoder.iac_cell_levels, decoder.iac_cells):
        size = sizes[level]
        x = torch.randn(1, cell.width, *size, device=device)
        for name in cell.operation_names:
            op = build_operation(name, spec, cell.width).to(device).eval()
            rows.append(OperationCost(level, name, cell.width, tuple(size), sum(p.numel() for p in op.parameters()),
                                      conv_flops(op, x), latency_ms(op, x, repeats)))
        rows.append(frame_cost(cell, level, tuple(size), device, repeats))
    return rows


def cost_rows(saved: dict) -> list[OperationCost]:
    """The rows of a table as ``operation_costs.json`` holds it."""
    return [OperationCost(**{**row, "spatial_size": tuple(row["spatial_size"])}) for row in saved["rows"]]


def load_or_measure_costs(folder: Path, network: nn.Module, patch_size, device: torch.device) -> list[OperationCost]:
    """The cached table of ``folder`` when it was measured for this patch size and device type, else measured
    now and cached."""
    path = Path(folder) / COST_FILE
    key = {"patch_size": list(patch_size), "device": device.type,
           "levels": list(implanted_decoder(network).iac_cell_levels), "version": TABLE_VERSION}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return cost_rows(saved)
    rows = measure_costs(network, patch_size, device)
    path.write_text(json.dumps({"key": key, "rows": [asdict(r) for r in rows]}, indent=1))
    return rows


def operation_cost_vector(rows: list[OperationCost], operation_names, measure: str) -> torch.Tensor:
    """Per operation (alpha's column order), its cost summed over the levels, in ``measure``."""
    if measure not in MEASURES:
        raise ValueError(f"Unknown cost measure {measure!r}; use one of {', '.join(MEASURES)}.")
    totals = {name: 0.0 for name in operation_names}
    for row in rows:
        if row.operation != FRAME:  # the same for every architecture: no gradient to alpha/beta
            totals[row.operation] += float(getattr(row, measure))
    return torch.tensor([totals[name] for name in operation_names])


def genotype_costs(rows: list[OperationCost], operations: list[str],
                   levels: tuple[int, ...] | None = None) -> dict[str, float]:
    """What discrete cells with these ``operations`` (one per chosen edge) add at ``levels`` (every level of the
    table when None), per measure: at each level the sum of its operations' rows (the discrete cell runs them one
    after the other) and of its ``frame`` row (a table without one, written before frame rows existed, counts
    the operations only)."""
    table = {(row.level, row.operation): row for row in rows}
    measured = sorted({row.level for row in rows})
    levels = measured if levels is None else sorted(levels)
    missing = [level for level in levels if level not in measured]
    if missing:
        raise KeyError(f"the cost table has no rows for level(s) {', '.join(map(str, missing))}; it was measured "
                       f"for cells at levels {', '.join(map(str, measured))}")
    totals = {measure: 0.0 for measure in MEASURES}
    for level in levels:
        frame = table.get((level, FRAME))
        if frame is not None:
            for measure in MEASURES:
                totals[measure] += float(getattr(frame, measure))
        for operation in operations:
            row = table.get((level, operation))
            if row is None:
                raise KeyError(f"the cost table has no row for {operation!r} at level {level}; it was measured for "
                               f"another search space")
            for measure in MEASURES:
                totals[measure] += float(getattr(row, measure))
    return totals


def expected_cost(op_weights: torch.Tensor, edge_weights: torch.Tensor, costs: torch.Tensor) -> torch.Tensor:
    """sum_e edge_w[e] sum_o op_w[e, o] cost[o], over sum_e edge_w[e] max_o cost[o] (0 to 1, differentiable)."""
    costs = costs.to(op_weights.device, op_weights.dtype)
    most = costs.max()
    if most <= 0:
        return op_weights.new_zeros(())
    return (edge_weights * (op_weights @ costs)).sum() / (edge_weights.sum() * most)
