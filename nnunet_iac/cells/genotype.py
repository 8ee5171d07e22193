"""The discrete cell architecture: derivation from alpha/beta and its versioned JSON form.

Derivation (paper 3.2.3, PC-DARTS with edge normalization). With phi = softmax(alpha) per edge and
Psi = softmax(beta) over the incoming edges of a node, for intermediate node j:

    op(i, j)       = argmax_{o != zero} phi_{i,j}^o
    strength(i, j) = Psi_{i,j} * max_{o != zero} phi_{i,j}^o

and the node keeps the ``inputs_per_node`` (2) sources with the largest strength; ties go to the lower
source number. The cell output concatenates the last R intermediate nodes.

Version 2 of the JSON form also carries what the search built its cells with besides the graph: the cell
options (``cell_options``: K, width divisor, mode, init, by their ``nnUNet_IAC_*`` names) and the search
space (``search_space``: the operation names, alpha's columns). Stage III builds its cells from them, so a
retrain cannot silently build other cells than the ones the search chose among. Version 1 files have
neither; Stage III then takes the options from its settings, as before.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.cells.topology import NUM_INPUTS, CellTopology
from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.cells.branching import BRANCHING, DIRECTIONS, NONE, OFF, BranchingError, check_branches
from nnunet_iac.cells.levels import ALL, LevelsError, parse_levels
from nnunet_iac.cells.output_init import INITS

FORMAT = "nnunet-iac-genotype"
VERSION = 2
VERSIONS = (1, 2)
#: the cell options a version-2 genotype records, by their nnUNet_IAC_* setting names
CELL_OPTION_NAMES = ("k", "width_divisor", "mode", "init", "levels", "branching")
#: cell options a version-2 genotype written before they existed may lack, with the value those genotypes meant
LATER_CELL_OPTIONS = {"levels": ALL, "branching": OFF}


class GenotypeError(ValueError):
    """A genotype file or dictionary that cannot describe a cell."""


@dataclass(frozen=True)
class Genotype:
    """``nodes[j]`` lists the (operation, source node) pairs summed into intermediate node j.

    ``cell_options`` and ``search_space`` say what the search built its cells with (None for a version-1
    genotype, which did not record them). Like ``meta`` they do not take part in equality: two genotypes are
    equal when they describe the same cell graph, as ``genotype_key`` and the folds' ``cells_signature`` do.
    ``branches`` (``cells.branching``) is part of the graph: the merge chosen for each neighbouring level's
    features, as (direction, merge) pairs; empty when the cell takes none (every genotype searched without
    branching, or one whose search chose ``none`` everywhere).
    """

    nodes: tuple[tuple[tuple[str, int], ...], ...]
    concat: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    cell_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    search_space: tuple[str, ...] | None = field(default=None, compare=False, hash=False)
    branches: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if (self.cell_options is None) != (self.search_space is None):
            raise GenotypeError("A genotype records both its cell options and its search space, or neither "
                                "(a version-1 genotype).")

    @property
    def version(self) -> int:
        """1 when the genotype carries no cell options (written as it was read), else 2."""
        return 1 if self.cell_options is None else VERSION

    @property
    def topology(self) -> CellTopology:
        return CellTopology(num_nodes=len(self.nodes), concat_last=len(self.concat))

    @property
    def branch_merges(self) -> dict[str, str]:
        """The merge of each direction the cell takes a branch from (directions with ``none`` left out)."""
        return dict(self.branches)

    def operations(self) -> list[str]:
        return [op for node in self.nodes for op, _ in node]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT,
            "version": self.version,
            "nodes": [[{"op": op, "input": src} for op, src in node] for node in self.nodes],
            "concat": list(self.concat),
            "meta": dict(self.meta),
        }
        if self.branches:  # every direction, 'none' included, as the parser wants them
            data["branches"] = {d: self.branch_merges.get(d, NONE) for d in DIRECTIONS}
        if self.cell_options is not None:
            data["cell_options"] = dict(self.cell_options)
            data["search_space"] = list(self.search_space)
        return data

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
        lines += [f"branch from the {direction} level: {merge}" for direction, merge in self.branches]
        return "\n".join(lines)


def node_name(src: int) -> str:
    return {0: "skip", 1: "up"}.get(src, f"node {src}")


def _parse(data: Any, source: str) -> Genotype:
    def fail(problem: str) -> GenotypeError:
        return GenotypeError(f"{source}: {problem}. Expected a genotype written by nnunet-iac "
                             f"(\"format\": \"{FORMAT}\", \"version\": {' or '.join(map(str, VERSIONS))}).")

    if not isinstance(data, dict):
        raise fail(f"top level is {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise fail(f"'format' is {data.get('format')!r}, so this is not an nnunet-iac genotype")
    if data.get("version") not in VERSIONS:
        raise fail(f"unsupported version {data.get('version')!r}; this nnunet-iac reads versions "
                   f"{', '.join(map(str, VERSIONS))}")
    nodes, concat = _parse_graph(data, fail)
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise fail("'meta' must be an object")
    cell_options, space = _parse_search_record(data, fail) if data["version"] >= 2 else (None, None)
    _refuse_unknown_operations(nodes, space, fail)
    branches = ()
    if "branches" in data:
        try:
            branches = canonical_branches(check_branches(data["branches"]))
        except BranchingError as e:
            raise fail(str(e).rstrip(".")) from None
    return Genotype(nodes=nodes, concat=concat, meta=meta, cell_options=cell_options, search_space=space,
                    branches=branches)


def canonical_branches(merges: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Genotype.branches from a merge per direction: the directions whose merge is not ``none``."""
    return tuple((direction, merge) for direction, merge in merges.items() if merge != NONE)


def _parse_graph(data: dict, fail) -> tuple[tuple, tuple]:
    """Nodes and concat; operation names are checked afterwards, all at once."""
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
            if not isinstance(op, str):
                raise fail(f"node {j} has operation {op!r}; an operation is a name")
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
    return tuple(nodes), tuple(concat)


def _parse_search_record(data: dict, fail) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A version-2 genotype's cell options and search space, checked for type; whether the mode exists is
    for the network layer to say (Stage III checks it against the implant modes)."""
    options = data.get("cell_options")
    if isinstance(options, dict):
        options = {**LATER_CELL_OPTIONS, **options}
    if not isinstance(options, dict) or set(options) != set(CELL_OPTION_NAMES):
        raise fail(f"'cell_options' must be an object with exactly {', '.join(CELL_OPTION_NAMES)}, got {options!r}")
    try:
        parse_levels(options["levels"])
    except LevelsError as e:
        raise fail(f"cell option {e}") from None
    for name in ("k", "width_divisor"):
        value = options[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(f"cell option {name!r} is {value!r}; it must be an integer >= 1")
    if options["branching"] not in BRANCHING:
        raise fail(f"cell option 'branching' is {options['branching']!r}; known: {', '.join(BRANCHING)}")
    if not isinstance(options["mode"], str):
        raise fail(f"cell option 'mode' is {options['mode']!r}; it must be a mode's name")
    if options["init"] not in INITS:
        raise fail(f"cell option 'init' is {options['init']!r}; known: {', '.join(INITS)}")
    space = data.get("search_space")
    if (not isinstance(space, list) or not space or not all(isinstance(op, str) for op in space)
            or len(set(space)) != len(space)):
        raise fail(f"'search_space' must be a non-empty list of distinct operation names, got {space!r}")
    return {name: options[name] for name in CELL_OPTION_NAMES}, tuple(space)


def _refuse_unknown_operations(nodes: tuple, space: tuple[str, ...] | None, fail) -> None:
    """Every operation a genotype names must be one this nnunet-iac can build (and a node's never ``zero``, which
    derivation excludes); name all that are not at once, so an edited or foreign file is fixed in one go."""
    chosen = [op for node in nodes for op, _ in node]
    unknown = sorted({op for op in chosen if op not in OPERATIONS or op == ZERO}
                     | {op for op in space or () if op not in OPERATIONS})
    if unknown:
        cell_ops = ", ".join(o for o in OPERATIONS if o != ZERO)
        raise fail(f"unknown operation{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; known: "
                   f"{cell_ops} (and {ZERO!r} in a search space). Use the nnunet-iac version that searched it, or "
                   f"search again")
    outside = sorted(set(chosen) - set(space or chosen))
    if outside:
        raise fail(f"the node operation{'s' if len(outside) > 1 else ''} {', '.join(map(repr, outside))} "
                   f"{'are' if len(outside) > 1 else 'is'} not in the genotype's own search_space {list(space)}")


def derive_genotype(op_weights: torch.Tensor, edge_weights: torch.Tensor, topology: CellTopology,
                    operation_names: tuple[str, ...], inputs_per_node: int = 2,
                    meta: dict[str, Any] | None = None, cell_options: dict[str, Any] | None = None) -> Genotype:
    """Discretize softmax(alpha) (edges x ops) and normalized beta (edges,) into a genotype. With
    ``cell_options`` (the search's K, width divisor, mode, init, levels) it records them and ``operation_names`` as its
    search space (version 2), so Stage III builds its cells as the search did."""
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
    genotype = Genotype(nodes=tuple(nodes), concat=topology.concat_nodes, meta=dict(meta or {}))
    if cell_options is None:
        return genotype
    cell_options = {**LATER_CELL_OPTIONS, **cell_options}
    return replace(genotype, cell_options={name: cell_options[name] for name in CELL_OPTION_NAMES},
                   search_space=tuple(operation_names))
