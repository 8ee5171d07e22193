"""Paired differences between two arms on the same cases: mean, bootstrap 95 % intervals, Wilcoxon p-value.

Every arm of the benchmark predicts the same validation and test cases, so the honest comparison is per case:
one number per case (its foreground Dice under the paired empty-case rule, nnunet_iac/benchmark/case_dice.py),
the difference of two arms case by case, and an interval. A mean difference of 0.2 points between arms whose
per-case Dice spread by 5 points means nothing without it (issue 14).

Each row holds two 95 % intervals (nnunet_iac/benchmark/intervals.py): over cases, of the per-case mean of each
side's seeds (the seeds' average model held fixed), and over cases and seeds together (each side's seeds
resampled too), the one to read where a side has several seeds. Its p-values are Wilcoxon signed-rank tests of
the per-case differences, also adjusted by Holm's method over the rows of the set, since a table of many
comparisons has some small p-values by chance alone.

Also a command for finished runs: ``nnunet-iac benchmark-stats OUT [OUT...]`` prints the paired
table of each benchmark folder from the ``*_summary.json`` files nnU-Net's evaluation left in it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from nnunet_iac.benchmark.arm_names import (BASE, IAC, RANDOM, SELECTED, group_of, is_control, is_iac_variant,
                                            mean_label)
from nnunet_iac.benchmark.case_dice import NNUNET, PAIRED, RULES, SETS, arm_cases, evaluation_summary
from nnunet_iac.benchmark.intervals import (BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, LEVEL, bootstrap_interval, holm,
                                            seed_and_case_interval)


def statistics_method() -> dict:
    """What the paired tables rest on, for results.json and the report's text (issue 37)."""
    return {"level": LEVEL, "bootstrap_samples": BOOTSTRAP_SAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
            "interval_cases": "percentile bootstrap over cases of the per-case differences of each side's seed mean",
            "interval_seeds_and_cases": "percentile bootstrap resampling the cases (paired) and each side's seeds "
                                        "(deviations widened by sqrt(s/(s-1))); measured coverage at 3 seeds per "
                                        "side where seeds dominate: 87 % for 95 % nominal (tests/bench/"
                                        "test_intervals.py)",
            "p_values": "two-sided Wilcoxon signed-rank of the per-case differences; Holm-adjusted over each set's "
                        "rows",
            "empty_rule_paired": RULES[PAIRED], "empty_rule_headline": RULES[NNUNET]}


def _seeds(arm) -> list[dict[str, float]]:
    """One arm's per-case Dice as a list of seeds (a single dict is one seed)."""
    return [arm] if isinstance(arm, dict) else list(arm)


def paired_difference(a, b, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """``a - b`` over the cases every seed of both has.

    ``a`` and ``b`` are one arm's per-case Dice (case -> Dice) or a list of them, one per training seed. The
    mean is that of the per-case differences of the seeds' means; ``ci95`` the percentile bootstrap interval
    over cases of those differences; ``ci95_seeds_and_cases`` resamples each side's seeds as well; ``seeds``
    how many each side has, ``seed_means`` each seed's mean Dice over the shared cases (the seed spread beside
    the case interval); ``wilcoxon_p`` the two-sided signed-rank p-value of the per-case differences."""
    a, b = _seeds(a), _seeds(b)
    common = sorted(set.intersection(*(set(arm) for arm in a + b)))
    if not common:
        raise ValueError("The two arms share no case; were they evaluated on the same set?")
    matrix_a, matrix_b = (np.array([[arm[case] for case in common] for arm in side]) for side in (a, b))
    differences = matrix_a.mean(axis=0) - matrix_b.mean(axis=0)
    low, high = bootstrap_interval(differences, samples, seed)
    both_low, both_high = seed_and_case_interval(matrix_a, matrix_b, samples, seed)
    p_value = 1.0 if np.all(differences == 0) else float(wilcoxon(differences, zero_method="wilcox").pvalue)
    return {"n": len(common), "mean": float(differences.mean()), "ci95": [low, high],
            "ci95_seeds_and_cases": [both_low, both_high], "seeds": [len(a), len(b)],
            "seed_means": [matrix_a.mean(axis=1).tolist(), matrix_b.mean(axis=1).tolist()],
            "wilcoxon_p": p_value}


def _groups(arms) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for arm in sorted(arms):
        groups.setdefault(group_of(arm), []).append(arm)
    return groups


def _reference(name: str, members: list[str], cases: dict, case_set: str) -> tuple[str, list[dict[str, float]]]:
    """A group as one reference: the arm itself, or its seeds together under the group's mean label."""
    seeds = [cases[m][case_set] for m in members]
    return (members[0], seeds) if len(members) == 1 else (mean_label(name), seeds)


def _mean_dice(seeds: list[dict[str, float]]) -> float:
    return float(np.mean([np.mean(list(seed.values())) for seed in seeds]))


def _with_holm(rows: dict) -> dict:
    """Each row's Wilcoxon p adjusted by Holm over the set's rows (``holm_p``), and the rows' count."""
    adjusted = holm([r["wilcoxon_p"] for r in rows.values()])
    return {name: {**r, "holm_p": p, "comparisons": len(rows)} for (name, r), p in zip(rows.items(), adjusted)}


def paired_comparisons(cases: dict[str, dict[str, dict[str, float]]]) -> dict:
    """For each set, IAC against every other arm, in rows ``"<a> - <b>"``.

    ``cases[arm][set]`` is the per-case Dice of that arm's predictions of that set (case_dice.per_case_dice);
    arms are grouped by name (nnunet_iac/benchmark/arm_names.py), and a group of several seeds enters a row with
    all its seeds (its per-case mean for the case interval, resampled for the seed-and-case interval). Every IAC
    seed, the retrained choice of ``nnunet-iac select`` where there is one, and the seeds together, is compared
    with the base, each control and the random genotypes; the IAC seeds together (or the single seed) also with
    each random genotype, and with the **best control** of the set (the control with the highest mean Dice on
    it: the strictest reference, chosen after the fact in the control's favour). Each control and the random
    genotypes are also compared with the base. An IAC variant (``iac_<variant>``: ``--iac-variant``,
    ``--strategies``) is compared with the base, the reference IAC arm and the best control."""
    groups = _groups(cases)
    if BASE not in groups or IAC not in groups:
        raise ValueError(f"Paired comparisons need the base and an IAC arm; got {', '.join(sorted(cases))}.")
    out = {}
    for case_set in SETS:
        rows = {}
        candidates = [(arm, [cases[arm][case_set]]) for arm in groups[IAC]]
        if len(candidates) > 1:
            candidates.append(_reference(IAC, groups[IAC], cases, case_set))
        main_name, main = candidates[-1]
        if SELECTED in groups:
            candidates.append((SELECTED, [cases[SELECTED][case_set]]))
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
        best = max(controls, key=lambda c: _mean_dice(c[1])) if controls else None
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
        out[case_set] = _with_holm(rows)
    return out


def _interval(values) -> str:
    low, high = values
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def _row_cells(r: dict) -> list[str]:
    """The interval and p-value cells of one row; a results.json written before issue 37 lacks the seed-aware
    interval and Holm's p (n/a)."""
    seeds = r.get("seeds")
    if seeds is None:
        return [_interval(r["ci95"]), "n/a", "n/a", f"{r['wilcoxon_p']:.3g}", "n/a"]
    both = _interval(r["ci95_seeds_and_cases"]) if max(seeds) > 1 else "as cases (1 seed each)"
    return [_interval(r["ci95"]), both, f"{seeds[0]} vs {seeds[1]}", f"{r['wilcoxon_p']:.3g}", f"{r['holm_p']:.3g}"]


def paired_table(paired: dict, notes: dict[str, str] | None = None) -> list[str]:
    """Markdown rows, differences in Dice points (x100). ``notes``: text put after the name of every row whose
    left side is the key (the budget ``iac_selected`` had on top of IAC's, issue 37)."""
    notes = notes or {}
    level = f"{LEVEL:.0%}"
    lines = [f"| set | difference | mean (points) | {level} interval, cases | {level} interval, seeds and cases | "
             f"seeds | Wilcoxon p | Holm p | cases |", "|---|---|---|---|---|---|---|---|---|"]
    for case_set, rows in paired.items():
        for name, r in rows.items():
            note = next((f" ({text})" for key, text in notes.items() if name.startswith(f"{key} - ")), "")
            cells = [case_set, name + note, f"{100 * r['mean']:+.2f}", *_row_cells(r), str(r["n"])]
            lines.append("| " + " | ".join(cells) + " |")
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
