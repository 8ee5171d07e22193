"""forest.png: the paired differences the verdict rests on, on one axis with zero marked.

dice.png shows each arm's absolute Dice with intervals as wide as the spread of the cases, while the claims are
paired differences, whose intervals are much narrower (issue 38). Here each row is one comparison of the main IAC
result (the seeds together, or the single seed) with a control, the best control or a random genotype: its mean
difference in Dice points and its 95 % interval, over seeds and cases where a side has several seeds, over cases
otherwise. Left of zero the reference was better.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from nnunet_iac.benchmark.arm_names import BASE, IAC, RANDOM, group_of, is_control, mean_label
from nnunet_iac.benchmark.figure import save_figure


def _main_label(rows: dict) -> str | None:
    """The main IAC result's name in the rows: the seeds' mean label, else the single IAC seed."""
    lefts = [name.split(" - ")[0] for name in rows]
    if mean_label(IAC) in lefts:
        return mean_label(IAC)
    return next((left for left in lefts if group_of(left) == IAC), None)


def _is_reference(right: str) -> bool:
    """A control (a seed, the seeds' mean, the best one) or a random genotype: what IAC has to beat."""
    if right.startswith("best control"):
        return True
    group = group_of(right.removesuffix("_mean_of_seeds"))
    return right != BASE and (is_control(group) or group == RANDOM)


def forest_rows(paired: dict) -> list[dict]:
    """Per set, the main IAC result against every control and random genotype: name, mean and interval (the
    seed-and-case one where a side has several seeds), in points, in the order of results.json."""
    out = []
    for case_set, rows in paired.items():
        main = _main_label(rows)
        for name, r in rows.items():
            left, _, right = name.partition(" - ")
            if left != main or not _is_reference(right):
                continue
            several = max(r.get("seeds", [1, 1])) > 1 and "ci95_seeds_and_cases" in r
            low, high = r["ci95_seeds_and_cases"] if several else r["ci95"]
            out.append({"set": case_set, "comparison": name, "mean": 100 * r["mean"], "low": 100 * low,
                        "high": 100 * high, "interval": "seeds and cases" if several else "cases"})
    return out


def write_forest_figure(path: Path, rows: list[dict], title: str) -> Path:
    """One horizontal interval per row of ``forest_rows``, a panel per set, zero marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    height = 1.5 + 0.35 * max((sum(r["set"] == s for r in rows) for s in sets), default=1)
    figure, axes = plt.subplots(1, max(len(sets), 1), figsize=(6 * max(len(sets), 1), height), squeeze=False)
    for axis, case_set in zip(axes[0], sets):
        chosen = [r for r in rows if r["set"] == case_set]
        for y, r in enumerate(chosen):
            colour = "tab:green" if r["low"] > 0 else "tab:red" if r["high"] < 0 else "tab:gray"
            axis.errorbar([r["mean"]], [y], xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]], fmt="o",
                          capsize=3, color=colour)
        axis.axvline(0.0, color="black", linewidth=0.8)
        axis.set_yticks(range(len(chosen)), [r["comparison"] for r in chosen], fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel("paired difference (Dice points), 95 % interval")
        axis.set_title(case_set)
        axis.grid(axis="x", alpha=0.3)
    # wrapped to the figure's width: a long dataset name would run off a single panel
    figure.suptitle(textwrap.fill(f"{title}: IAC against the controls and random genotypes", 60 * len(sets)),
                    fontsize=10)
    return save_figure(figure, path)
