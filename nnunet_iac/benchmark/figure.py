"""dice.png: every arm's mean per-case Dice with a bootstrap 95 % interval over cases, one panel per set.

The tables give the paired differences; the figure shows at a glance where the arms sit and how wide the
case sampling makes each of them (an interval over cases, not over training seeds: every seed is its own
point, coloured by its group).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nnunet_iac.benchmark.arm_names import group_of
from nnunet_iac.benchmark.case_dice import SETS
from nnunet_iac.benchmark.intervals import bootstrap_interval


def mean_with_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and bootstrap 95 % interval of the mean over cases."""
    low, high = bootstrap_interval(values)
    return float(np.mean(values)), low, high


def write_dice_figure(path: Path, cases: dict[str, dict[str, dict[str, float]]], title: str) -> Path:
    """``cases[arm][set]`` as for nnunet_iac.benchmark.paired_statistics; arms in the order given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(cases)
    groups = list(dict.fromkeys(group_of(arm) for arm in arms))
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    figure, axes = plt.subplots(1, len(SETS), figsize=(4 + 0.45 * len(arms) * len(SETS), 4.5), squeeze=False)
    for axis, case_set in zip(axes[0], SETS):
        for x, arm in enumerate(arms):
            mean, low, high = mean_with_interval(list(cases[arm][case_set].values()))
            axis.errorbar([x], [100 * mean], yerr=[[100 * (mean - low)], [100 * (high - mean)]], fmt="o",
                          capsize=3, color=colours[group_of(arm)])
        axis.set_xticks(range(len(arms)), arms, rotation=60, ha="right", fontsize=8)
        axis.set_title(f"{case_set} ({len(next(iter(cases.values()))[case_set])} cases)")
        axis.set_ylabel("mean per-case Dice (%)")
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{title}: mean and bootstrap 95 % interval over cases")
    return save_figure(figure, path)


def save_figure(figure, path: Path) -> Path:
    """Laid out, written at the benchmark's resolution, closed (a long run draws many)."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
