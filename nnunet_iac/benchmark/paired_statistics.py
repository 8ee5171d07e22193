"""Paired differences between two arms on the same cases: mean, bootstrap 95 % interval, Wilcoxon p-value.

Every arm of the benchmark predicts the same validation and test cases, so the honest comparison is per case:
one number per case (its foreground Dice, the mean over classes of nnU-Net's per-case Dice), the difference
of two arms case by case, and an interval over cases. A mean difference of 0.2 points between arms whose
per-case Dice spread by 5 points means nothing without it (issue 14).

Also a command for finished runs: ``nnunet-iac benchmark-stats OUT [OUT...]`` prints the paired
table of each benchmark folder from the ``*_summary.json`` files nnU-Net's evaluation left in it.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from nnunet_iac.benchmark.arm_names import (BASE, IAC, RANDOM, SELECTED, group_of, is_control, is_iac_variant,
                                            mean_label)

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
SETS = ("validation", "test")


def per_case_dice(summary_file: Path) -> dict[str, float]:
    """Case name -> mean Dice over the foreground classes of one case, from nnU-Net's ``summary.json``.

    A class absent from both reference and prediction has Dice NaN in nnU-Net's file; it is left out of the
    case's mean (a case with no class at all is left out)."""
    cases = {}
    for row in json.loads(Path(summary_file).read_text())["metric_per_case"]:
        values = [m["Dice"] for m in row["metrics"].values() if m["Dice"] is not None and not math.isnan(m["Dice"])]
        if values:
            cases[Path(row["reference_file"]).name] = float(np.mean(values))
    return cases


def evaluation_summary(predictions: Path, arm: str, case_set: str) -> Path:
    """Where the benchmark keeps nnUNetv2_evaluate_folder's summary of one arm on one set."""
    return Path(predictions) / arm / f"{case_set}_summary.json"


def arm_cases(predictions: Path, arm: str) -> dict[str, dict[str, float]]:
    """``per_case_dice`` of one arm on every set, from its evaluation summaries."""
    return {case_set: per_case_dice(evaluation_summary(predictions, arm, case_set)) for case_set in SETS}


def bootstrap_interval(values, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of ``values`` (resampled with replacement; a fixed seed,
    so that a report is reproducible)."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_difference(a: dict[str, float], b: dict[str, float], samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> dict:
    """``a - b`` over the cases both have: mean, percentile bootstrap 95 % interval (cases resampled with
    replacement, fixed seed so a report is reproducible) and the two-sided Wilcoxon signed-rank p-value."""
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("The two arms share no case; were they evaluated on the same set?")
    differences = np.array([a[case] - b[case] for case in common])
    low, high = bootstrap_interval(differences, samples, seed)
    if np.all(differences == 0):
        p_value = 1.0
    else:
        p_value = float(wilcoxon(differences, zero_method="wilcox").pvalue)
    return {"n": len(common), "mean": float(differences.mean()), "ci95": [float(low), float(high)],
            "wilcoxon_p": p_value}


def mean_over_seeds(arms: list[dict[str, float]]) -> dict[str, float]:
    """Per-case mean of several seeds of one arm (the cases all seeds have): the seeds' average model."""
    common = set.intersection(*(set(arm) for arm in arms))
    return {case: float(np.mean([arm[case] for arm in arms])) for case in common}


def _groups(arms) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for arm in sorted(arms):
        groups.setdefault(group_of(arm), []).append(arm)
    return groups


def _reference(name: str, members: list[str], cases: dict, case_set: str) -> tuple[str, dict[str, float]]:
    """A group as one reference: the arm itself, or the per-case mean of its seeds."""
    if len(members) == 1:
        return members[0], cases[members[0]][case_set]
    return mean_label(name), mean_over_seeds([cases[m][case_set] for m in members])


def paired_comparisons(cases: dict[str, dict[str, dict[str, float]]]) -> dict:
    """For each set, IAC against every other arm, in rows ``"<a> - <b>"``.

    ``cases[arm][set]`` is ``per_case_dice`` of that arm's predictions of that set; arms are grouped by name
    (nnunet_iac/benchmark/arm_names.py). Every IAC seed, the retrained choice of ``nnunet-iac select`` where there is
    one, and the per-case mean of the seeds, is compared with the base,
    each control (the mean of its seeds where it has several) and the random genotypes' mean; the IAC mean
    (or the single seed) also with each random genotype, and with the **best control** of the set (the
    control with the highest mean Dice on it: the strictest reference, chosen after the fact in the
    control's favour). Each control and the random genotypes are also compared with the base. An IAC variant
    (``iac_<variant>``: ``--iac-variant``, ``--strategies``) is compared with the base, the reference IAC arm
    and the best control."""
    groups = _groups(cases)
    if BASE not in groups or IAC not in groups:
        raise ValueError(f"Paired comparisons need the base and an IAC arm; got {', '.join(sorted(cases))}.")
    out = {}
    for case_set in SETS:
        rows = {}
        candidates = [(arm, cases[arm][case_set]) for arm in groups[IAC]]
        if len(candidates) > 1:
            candidates.append(_reference(IAC, groups[IAC], cases, case_set))
        main_name, main = candidates[-1]
        if SELECTED in groups:
            candidates.append((SELECTED, cases[SELECTED][case_set]))
        references = {g: _reference(g, members, cases, case_set) for g, members in groups.items()
                      if g == BASE or is_control(g) or g == RANDOM}
        base = references[BASE][1]
        for name, iac in candidates:
            for reference, values in references.values():
                rows[f"{name} - {reference}"] = paired_difference(iac, values)
        if SELECTED in groups:
            rows[f"{SELECTED} - {main_name}"] = paired_difference(cases[SELECTED][case_set], main)
        if len(groups.get(RANDOM, [])) > 1:
            for arm in groups[RANDOM]:
                rows[f"{main_name} - {arm}"] = paired_difference(main, cases[arm][case_set])
        controls = [reference for g, reference in references.items() if is_control(g)]
        best = max(controls, key=lambda c: float(np.mean(list(c[1].values())))) if controls else None
        if best:
            rows[f"{main_name} - best control ({best[0]})"] = paired_difference(main, best[1])
        for group in filter(is_iac_variant, groups):
            name, values = _reference(group, groups[group], cases, case_set)
            rows[f"{name} - {BASE}"] = paired_difference(values, base)
            rows[f"{name} - {main_name}"] = paired_difference(values, main)
            if best:
                rows[f"{name} - best control ({best[0]})"] = paired_difference(values, best[1])
        for name, values in references.values():
            if name != BASE:
                rows[f"{name} - {BASE}"] = paired_difference(values, base)
        out[case_set] = rows
    return out


def paired_table(paired: dict) -> list[str]:
    """Markdown rows, differences in Dice points (x100)."""
    lines = ["| set | difference | mean (points) | 95 % interval (bootstrap over cases) | Wilcoxon p | cases |",
             "|---|---|---|---|---|---|"]
    for case_set, rows in paired.items():
        for name, r in rows.items():
            low, high = r["ci95"]
            lines.append(f"| {case_set} | {name} | {100 * r['mean']:+.2f} | [{100 * low:+.2f}, {100 * high:+.2f}] | "
                         f"{r['wilcoxon_p']:.3g} | {r['n']} |")
    return lines


def read_run(out: Path) -> dict:
    """Per-case Dice of every arm a benchmark folder evaluated (``predictions/<arm>/<set>_summary.json``)."""
    predictions = Path(out) / "predictions"
    evaluated = [folder.name for folder in sorted(predictions.iterdir())
                 if all(evaluation_summary(predictions, folder.name, s).is_file() for s in SETS)]
    cases = {arm: arm_cases(predictions, arm) for arm in evaluated}
    if BASE not in cases or not any(group_of(arm) == IAC for arm in cases):
        raise FileNotFoundError(f"{out}: no evaluation of the base and an IAC arm under predictions/; run the "
                                f"benchmark (or --resume it) until every arm is evaluated.")
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet-iac benchmark-stats", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="+", help="benchmark folders (--out of run_benchmark)")
    args = parser.parse_args(argv)
    for out in args.out:
        cases = read_run(Path(out))
        print(f"\n{out}\n")
        print("\n".join(paired_table(paired_comparisons(cases))))


if __name__ == "__main__":
    main()
