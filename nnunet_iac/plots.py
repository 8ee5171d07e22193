"""Pictures of a search: op weights per edge over epochs, and the genotype as a graph (no graphviz)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nnunet_iac.atomic_io import atomic_destination  # noqa: E402
from nnunet_iac.cell_topology import NUM_INPUTS, CellTopology  # noqa: E402
from nnunet_iac.genotype import Genotype, node_name  # noqa: E402


def plot_operation_weights(records, operation_names, topology: CellTopology, path: Path) -> None:
    """One panel per edge, one line per operation: softmax(alpha) over the epochs."""
    edges = topology.edges()
    cols = 4
    rows = -(-len(edges) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
    epochs = [r.epoch for r in records]
    for e, ((src, node), ax) in enumerate(zip(edges, axes.flat)):
        for o, name in enumerate(operation_names):
            ax.plot(epochs, [r.op_weights[e][o] for r in records], label=name)
        ax.set_title(f"{node_name(src)} -> node {node + NUM_INPUTS}", fontsize=9)
    for ax in list(axes.flat)[len(edges):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.supxlabel("epoch")
    fig.supylabel("softmax(alpha)")
    fig.tight_layout()
    _save(fig, path)


def draw_genotype(genotype: Genotype, path: Path, title: str = "") -> None:
    """Inputs on the left, intermediate nodes in order, the concatenated output on the right."""
    n = len(genotype.nodes)
    positions = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for j in range(n):
        positions[NUM_INPUTS + j] = (1.0 + j, 0.9 if j % 2 == 0 else -0.9)
    out = NUM_INPUTS + n
    positions[out] = (1.0 + n, 0.0)
    fig, ax = plt.subplots(figsize=(2.2 * (n + 2), 4.2))
    for j, node in enumerate(genotype.nodes):
        for op, src in node:
            _arrow(ax, positions[src], positions[NUM_INPUTS + j], op, "tab:blue")
    for c in genotype.concat:
        _arrow(ax, positions[c], positions[out], "", "gray")
    labels = {0: "skip", 1: "up", out: "concat\n+ 1x1"}
    for index, (x, y) in positions.items():
        color = "lightgreen" if index < NUM_INPUTS else ("wheat" if index == out else "lightblue")
        ax.text(x, y, labels.get(index, str(index)), ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.4", fc=color, ec="black"), zorder=3)
    ax.set_xlim(-0.6, n + 1.6)
    ax.set_ylim(-1.6, 1.6)
    ax.axis("off")
    if title:
        ax.set_title(title)
    _save(fig, path)


def _arrow(ax, start, end, label, color):
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="->", color=color, shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.15"))
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.08, label, fontsize=7, ha="center",
                color="darkblue", zorder=2, bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5))


def _save(fig, path: Path) -> None:
    with atomic_destination(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
