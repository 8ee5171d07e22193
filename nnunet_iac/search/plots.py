"""Pictures of a search: op weights per edge over epochs, the signal diagnostics, the genotype as a graph."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nnunet_iac.common.atomic_io import atomic_destination  # noqa: E402
from nnunet_iac.cells.topology import NUM_INPUTS, CellTopology  # noqa: E402
from nnunet_iac.cells.genotype import Genotype, node_name  # noqa: E402


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


def plot_signal(rows: list[dict], path: Path, loss_labels: dict[str, str]) -> None:
    """Does the training get signal? Gradient SNR per tensor (log scale, 1 = noise floor), projection norm
    per level, the losses named in ``loss_labels`` and, for a search, alpha's entropy, over the epochs.

    ``rows``: JSON rows (``SearchHistory.to_list()`` or ``signal_history.json``), null where undefined.
    """
    if not rows:
        raise ValueError(f"plot_signal: no epochs to plot into {path}; call it after the first epoch.")
    epochs = [r["epoch"] for r in rows]
    panels = [("gradient SNR: ||mean|| / its noise (1 = noise only)", _signal_lines(rows), True),
              ("output projection norm", _level_lines(rows, "projection_norm", "level"), False),
              ("loss", {label: _column(rows, key) for key, label in loss_labels.items()}, False)]
    if "alpha_entropy" in rows[0]:
        panels.append(("alpha entropy (ln 8 = undecided)", {"mean over edges": _column(rows, "alpha_entropy")},
                       False))
    with plt.style.context("default"):  # nnU-Net's progress plot leaves seaborn's large fonts set
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), squeeze=False)
        for ax, (title, lines, log_scale) in zip(axes.flat, panels):
            for label, values in lines.items():
                ax.plot(epochs, values, marker=".", label=label)
            if log_scale:
                ax.set_yscale("log")
                ax.axhline(1.0, color="gray", linestyle="--", label="noise floor")
            else:
                ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.tight_layout()
        _save(fig, path)


def _column(rows: list[dict], key: str) -> list[float]:
    return [math.nan if r.get(key) is None else r[key] for r in rows]


def _level_lines(rows: list[dict], key: str, prefix: str) -> dict[str, list[float]]:
    levels = max((len(r.get(key) or []) for r in rows), default=0)
    return {f"{prefix} {level}": [math.nan if not r.get(key) or r[key][level] is None else r[key][level]
                                  for r in rows] for level in range(levels)}


def _signal_lines(rows: list[dict]) -> dict[str, list[float]]:
    lines = {name: _column(rows, f"snr_{name}") for name in ("alpha", "beta") if f"snr_{name}" in rows[0]}
    return {**lines, **_level_lines(rows, "snr_projection", "projection level")}


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


def plot_probe(rows: list[dict], path: Path) -> None:
    """Heat maps over epochs, one row per operation: the mean stable rank of its convolutions and, where the
    cells trained with Adas, their mean learning rate (``probe_history.json`` rows)."""
    import numpy as np

    if not rows:
        raise ValueError(f"plot_probe: no probed epochs to plot into {path}.")
    operations = list(dict.fromkeys(op for r in rows for op in r["operations"]))
    epochs = [r["epoch"] for r in rows]
    panels = [("mean stable rank", "operations", "stable_rank")]
    if any(r.get("learning_rates") for r in rows):
        panels.append(("mean Adas learning rate", "learning_rates", None))
    with plt.style.context("default"):
        fig, axes = plt.subplots(1, len(panels), figsize=(1.5 + 0.5 * len(epochs) * len(panels) + 3 * len(panels),
                                                          1.2 + 0.45 * len(operations)), squeeze=False)
        for ax, (title, key, field) in zip(axes[0], panels):
            values = np.array([[math.nan if op not in (r.get(key) or {}) else
                                (r[key][op][field] if field else r[key][op]) for r in rows] for op in operations])
            image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set_yticks(range(len(operations)), operations, fontsize=8)
            ax.set_xticks(range(len(epochs)), epochs, fontsize=7)
            ax.set_xlabel("epoch")
            ax.set_title(title, fontsize=10)
            fig.colorbar(image, ax=ax)
        fig.tight_layout()
        _save(fig, path)
