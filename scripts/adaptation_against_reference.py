"""Every adapted arm of published support sets against one reference prediction of the same target test cases.

Why: the adaptation report compares each arm with IAC. A question about the domain shift itself (how much of it
does a change of the input alone undo, with no training: docs/adaptation.md, the inverted-intensity diagnostic)
needs every arm against a prediction that is not an arm: an nnU-Net evaluation summary of the same test cases. The
differences are paired by case and resample support sets and cases, as the report's are
(adaptation_report.paired_over_sets; the reference is one fixed model, so it adds no set-to-set term), and each
case's Dice follows the benchmark's rule (case_dice.per_case_dice).

    python scripts/adaptation_against_reference.py SUMMARY.json docs/benchmark_results/.../fold_3.json ... \
        --label "base on inverted images" [--out RESULT.json --command "..." --commit abc1234 --note "..."]
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from nnunet_iac.benchmark.adaptation_arms import TARGET_TEST
from nnunet_iac.benchmark.adaptation_report import dice_matrix, paired_over_sets, shots_order, with_random_mean
from nnunet_iac.benchmark.case_dice import per_case_dice
from nnunet_iac.benchmark.intervals import bootstrap_interval


def load_records(fold_files: list[Path]) -> dict[str, list[dict]]:
    """Published fold files (scripts/publish_adaptation_fold.py) grouped by shot count, random genotypes also
    averaged into ``random_mean`` as in the report."""
    by_shots: dict[str, list[dict]] = {}
    for path in fold_files:
        record = json.loads(Path(path).read_text())["record"]
        by_shots.setdefault(str(record["shots"]), []).append(with_random_mean(record))
    return dict(sorted(by_shots.items(), key=lambda kv: shots_order(kv[0])))


def against_reference(reference: dict[str, float], by_shots: dict[str, list[dict]]) -> dict:
    cases = sorted(reference)
    reference_row = np.array([reference[c] for c in cases])
    shots = {}
    for count, records in by_shots.items():
        recorded = set(records[0]["dice"][next(iter(records[0]["dice"]))][TARGET_TEST])
        if recorded != set(cases):
            raise SystemExit(f"{count} shots: the support sets' target test cases ({len(recorded)}) are not the "
                             f"reference's ({len(cases)}); evaluate the reference on the benchmark's target test "
                             f"set (labelsTs of the target dataset)")
        arms = [a for a in records[0]["dice"] if all(a in r["dice"] for r in records)]
        shots[count] = {"support_sets": [r["fold"] for r in records],
                        "arms": {arm: paired_over_sets(dice_matrix(records, arm, cases) - reference_row)
                                 for arm in arms}}
    low, high = bootstrap_interval(list(reference.values()))
    return {"reference": {"mean": float(np.mean(list(reference.values()))), "ci95": [low, high],
                          "cases": len(cases)}, "shots": shots}


def markdown(result: dict, label: str) -> str:
    ref = result["reference"]
    lines = [f"Reference: {label}, target test Dice {100 * ref['mean']:.2f} [{100 * ref['ci95'][0]:.2f}, "
             f"{100 * ref['ci95'][1]:.2f}] over {ref['cases']} cases.", "",
             "| shots | arm | arm - reference | 95 % interval, support sets and cases | Wilcoxon p |", "|---|---|---|---|---|"]
    for count, summary in result["shots"].items():
        for arm, c in sorted(summary["arms"].items(), key=lambda kv: -kv[1]["mean"]):
            lines.append(f"| {count} | {arm} | {100 * c['mean']:+.2f} | [{100 * c['ci95'][0]:+.2f}, "
                         f"{100 * c['ci95'][1]:+.2f}] | {c['wilcoxon_p']:.2g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="nnUNetv2_evaluate_folder's summary.json of the reference")
    parser.add_argument("folds", type=Path, nargs="+", help="published fold_<F>.json files")
    parser.add_argument("--label", required=True, help="what the reference is, for the table")
    parser.add_argument("--out", type=Path, help="also write the result, with its provenance, to this JSON file")
    parser.add_argument("--command", default="", help="the commands that produced the reference")
    parser.add_argument("--commit", default="", help="the commit of the code that produced the reference")
    parser.add_argument("--note", default="", help="anything a reader must know (machine, data)")
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        raise SystemExit(f"{args.reference}: no such evaluation summary; run nnUNetv2_evaluate_folder on the "
                         f"reference's predictions first")
    reference = per_case_dice(args.reference)
    result = against_reference(reference, load_records(args.folds))
    table = markdown(result, args.label)
    print(table, end="")
    if args.out:
        args.out.write_text(json.dumps({
            "what": f"every adapted arm against a reference prediction: {args.label}", "command": args.command,
            "commit": args.commit, "date": datetime.date.today().isoformat(), "note": args.note,
            "folds": [str(f) for f in args.folds], **result,
            "reference_per_case": reference, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
