"""Copy an adaptation run's report into the repository under a dated name, with the provenance a results file needs.

The run rewrites ``adaptation.md``/``.json`` and its two figures after every support set, so the version that
gives a shot count's verdict is copied once that count's sets are done, before the next set changes it. The
copy says the command, the code each set ran, the machine and when the report was written, and links the
published per-set files (scripts/publish_adaptation_fold.py) of every set it covers.

    python scripts/publish_adaptation_report.py RUN DEST_FOLDER --label 10shots \
        --command "nnunet-iac benchmark ..." --code "support sets 3-5 at 0bc07ae" [--date 2026-12-08] [--force]
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

#: the run's report files -> the name pattern of their copies (date and label filled in)
REPORT_FILES = {"adaptation.md": "adaptation_{date}_{label}.md", "adaptation.json": "adaptation_{date}_{label}.json",
                "adaptation_forest.png": "adaptation_forest_{date}_{label}.png",
                "adaptation_curve.png": "adaptation_curve_{date}_{label}.png"}


class PublishError(Exception):
    pass


def provenance(run: Path, command: str, code: str) -> str:
    report = json.loads((run / "adaptation.json").read_text())
    folds = sorted(s["fold"] for shots in report["shots"].values() for s in shots["support_sets"])
    written = datetime.datetime.fromtimestamp((run / "adaptation.md").stat().st_mtime, datetime.timezone.utc)
    machine = f"{report['benchmark']['cpu_count']} CPU cores, device {report['benchmark']['device']}"
    links = ", ".join(f"[fold_{f}.json](fold_{f}.json)" for f in folds)
    return (f"<!-- copied from the run's adaptation.md -->\nCommand: `{command}`. Code: {code} (per set in "
            f"fold_<F>.json). Machine: {machine}. Report written {written:%Y-%m-%d %H:%M} UTC. "
            f"Per-case Dice: {links}.\n")


def publish(run: Path, destination: Path, label: str, command: str, code: str, date: str,
            force: bool = False) -> list[Path]:
    missing = [name for name in REPORT_FILES if not (run / name).is_file()]
    if missing:
        raise PublishError(f"{run} has no {', '.join(missing)}: run the benchmark (or --report-only) there first.")
    targets = {name: destination / pattern.format(date=date, label=label) for name, pattern in REPORT_FILES.items()}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise PublishError(f"{', '.join(existing)} already exist(s); choose another --label or --date, or pass "
                           f"--force to replace them.")
    destination.mkdir(parents=True, exist_ok=True)
    title, _, body = (run / "adaptation.md").read_text().partition("\n")
    targets["adaptation.md"].write_text(f"{title}\n\n{provenance(run, command, code)}{body}")
    for name, target in targets.items():
        if name != "adaptation.md":
            shutil.copyfile(run / name, target)
    return list(targets.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the benchmark's --out folder")
    p.add_argument("destination", type=Path, help="folder in the repository, e.g. docs/benchmark_results/...")
    p.add_argument("--label", required=True, help="what the copy covers, in its file names, e.g. 10shots")
    p.add_argument("--command", required=True, help="the benchmark command that produced the run")
    p.add_argument("--code", required=True, help="the commit(s) the sets ran, e.g. 'support sets 3-5 at 0bc07ae'")
    p.add_argument("--date", default=datetime.date.today().isoformat(), help="date in the file names (today)")
    p.add_argument("--force", action="store_true", help="replace copies that already exist")
    args = p.parse_args(argv)
    try:
        for path in publish(args.run, args.destination, args.label, args.command, args.code, args.date, args.force):
            print(path)
    except PublishError as error:
        p.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
