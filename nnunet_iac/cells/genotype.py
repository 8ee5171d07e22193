"""The discrete cell architecture: derivation from alpha/beta and its versioned JSON form.

Derivation (paper 3.2.3, PC-DARTS with edge normalization). With phi = softmax(alpha) per edge and
Psi = softmax(beta) over the incoming edges of a node, for intermediate node j:

    op(i, j)       = argmax_{o != zero} phi_{i,j}^o
    strength(i, j) = Psi_{i,j} * max_{o != zero} phi_{i,j}^o

and the node keeps the ``inputs_per_node`` (2) sources with the largest strength; ties go to the lower
source number. The cell output concatenates the last R intermediate nodes.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.cells.topology import NUM_INPUTS, CellTopology
from nnunet_iac.cells.operations import OPERATIONS, ZERO

FORMAT = "nnunet-iac-genotype"
VERSION = 1


class GenotypeError(ValueError):
    """A genotype file or dictionary that cannot describe a cell."""


@dataclass(frozen=True)
class Genotype:
    """``nodes[j]`` lists the (operation, source node) pairs summed into intermediate node j."""

    nodes: tuple[tuple[tuple[str, int], ...], ...]
    concat: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def topology(self) -> CellTopology:
        return CellTopology(num_nodes=len(self.nodes), concat_last=len(self.concat))

    def operations(self) -> list[str]:
        return [op for node in self.nodes for op, _ in node]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "nodes": [[{"op": op, "input": src} for op, src in node] for node in self.nodes],
            "concat": list(self.concat),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> "Genotype":
        return _parse(data, source)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Genotype":
        path = Path(path)
        if not path.is_file():
            raise GenotypeError(f"Genotype file {path} does not exist. Run nnUNetTrainerIACSearch first, or "
                                f"point nnUNet_IAC_genotype at an existing genotype.json.")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GenotypeError(f"Genotype file {path} is not valid JSON ({e}). Re-run the search or restore "
                                f"the file from a checkpoint; do not edit it by hand.") from e
        return _parse(data, str(path))

    def describe(self) -> str:
        lines = []
        for j, node in enumerate(self.nodes):
            terms = " + ".join(f"{op}({node_name(src)})" for op, src in node)
            lines.append(f"node {j + NUM_INPUTS}: {terms}")
        lines.append("output: concat(" + ", ".join(f"node {n}" for n in self.concat) + ")")
        return "\n".join(lines)


def node_name(src: int) -> str:
    return {0: "skip", 1: "up"}.get(src, f"node {src}")


def _parse(data: Any, source: str) -> Genotype:
    def fail(problem: str) -> GenotypeError:
        return GenotypeError(f"{source}: {problem}. Expected a genotype written by nnunet-iac "
                             f"(\"format\": \"{FORMAT}\", \"version\": {VERSION}).")

    if not isinstance(data, dict):
        raise fail(f"top level is {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise fail(f"'format' is {data.get('format')!r}, so this is not an nnunet-iac genotype")
    if data.get("version") != VERSION:
        raise fail(f"unsupported version {data.get('version')!r}; this nnunet-iac reads version {VERSION}")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise fail("'nodes' must be a non-empty list of nodes")
    nodes = []
    for j, raw_node in enumerate(raw_nodes):
        if not isinstance(raw_node, list) or not raw_node:
            raise fail(f"node {j} must be a non-empty list of {{'op', 'input'}} entries")
        node = []
        for entry in raw_node:
            if not isinstance(entry, dict) or set(entry) != {"op", "input"}:
                raise fail(f"node {j} has an entry {entry!r}; each entry needs exactly 'op' and 'input'")
            op, src = entry["op"], entry["input"]
            if op not in OPERATIONS or op == ZERO:
                known = ", ".join(o for o in OPERATIONS if o != ZERO)
                raise fail(f"node {j} uses unknown operation {op!r}; known: {known}")
            if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src < NUM_INPUTS + j:
                raise fail(f"node {j} reads input {src!r}; allowed are 0 .. {NUM_INPUTS + j - 1}")
            node.append((op, src))
        nodes.append(tuple(node))
    concat = data.get("concat")
    last = NUM_INPUTS + len(nodes)
    if (not isinstance(concat, list) or not concat
            or concat != list(range(last - len(concat), last))):
        raise fail(f"'concat' must list the last R intermediate nodes (a suffix of {NUM_INPUTS} .. {last - 1}), "
                   f"got {concat!r}")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise fail("'meta' must be an object")
    return Genotype(nodes=tuple(nodes), concat=tuple(concat), meta=meta)


def derive_genotype(op_weights: torch.Tensor, edge_weights: torch.Tensor, topology: CellTopology,
                    operation_names: tuple[str, ...], inputs_per_node: int = 2,
                    meta: dict[str, Any] | None = None) -> Genotype:
    """Discretize softmax(alpha) (edges x ops) and normalized beta (edges,) into a genotype."""
    op_weights = op_weights.detach().float().cpu()
    edge_weights = edge_weights.detach().float().cpu()
    if op_weights.shape != (topology.num_edges, len(operation_names)):
        raise ValueError(f"op_weights has shape {tuple(op_weights.shape)}, expected "
                         f"({topology.num_edges}, {len(operation_names)}).")
    candidates = [i for i, name in enumerate(operation_names) if name != ZERO]
    if not candidates:
        raise ValueError("The search space has no operation besides 'zero'.")
    nodes = []
    for node in range(topology.num_nodes):
        offset = topology.edge_offset(node)
        scored = []
        for src in topology.node_inputs(node):
            phi = op_weights[offset + src, candidates]
            best = int(torch.argmax(phi))
            strength = float(edge_weights[offset + src] * phi[best])
            scored.append((-strength, src, operation_names[candidates[best]]))
        chosen = sorted(scored)[:inputs_per_node]
        nodes.append(tuple((op, src) for _, src, op in sorted(chosen, key=lambda t: t[1])))
    return Genotype(nodes=tuple(nodes), concat=topology.concat_nodes, meta=dict(meta or {}))
