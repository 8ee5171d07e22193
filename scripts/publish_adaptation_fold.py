"""Copy one finished support set's record of an adaptation run into the repository, with its provenance.

The adaptation benchmark takes ~80 min per support set on 2 cores, more than a machine may live; each finished
set's per-case Dice (``RUN/folds/fold_<F>.json``, ~100 KB) is committed as soon as it exists, so that a lost run
folder loses no finished set. This adds what a results file must say (the command, the commit of the code, the
run's date and machine as the run recorded them), each arm's per-epoch training and support-set losses from
nnU-Net's training logs (nnunet_iac/benchmark/training_fit.py: does a losing arm under-fit its cases or transfer
worse?) and, for a record written before the benchmark kept it, the search's split and signal.

    python scripts/publish_adaptation_fold.py RUN FOLD DEST_FOLDER --command "nnunet-iac benchmark ..." \
        --commit abc1234 [--note "..."]
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from nnunet_iac.benchmark.adaptation_arms import adapted_arm, search_arm
from nnunet_iac.benchmark.adaptation_support import fold_record_path, search_signal
from nnunet_iac.benchmark.training_fit import training_fit


def training_fits(target_results: Path, fold: int, arm_names: list[str]) -> dict[str, dict]:
    """Each trained arm's per-epoch losses, for the arms whose model folder still holds its logs."""
    fits = {}
    for name in arm_names:
        arm = adapted_arm(name, fold)
        if arm is not None and (fit := training_fit(arm.fold(target_results))) is not None:
            fits[name] = fit
    return fits


def publish(run: Path, fold: int, destination: Path, command: str, commit: str, note: str = "") -> Path:
    record = json.loads(fold_record_path(run, fold).read_text())
    zero_shot = json.loads((run / "zero_shot.json").read_text())
    target_results = run / "nnUNet_results" / zero_shot["benchmark"]["target"]
    if fits := training_fits(target_results, fold, list(record.get("dice", {}))):
        record["training_fit"] = fits
    if "search_signal" not in record:
        record["search_signal"] = search_signal(search_arm(fold).fold(target_results))
    published = {"what": f"adaptation benchmark, support set fold {fold} ({record['shots']} shots, support seed "
                         f"{record['support_seed']}): every arm's per-case Dice on the target test set and the "
                         f"source forgetting cases, batches, parameters, stage times",
                 "source": zero_shot["benchmark"]["source"], "target": zero_shot["benchmark"]["target"],
                 "command": command, "commit": commit,
                 "run_last_started": zero_shot["benchmark"]["date"], "published": datetime.date.today().isoformat(),
                 "machine": f"{zero_shot['benchmark']['cpu_count']} CPU cores, device "
                            f"{zero_shot['benchmark']['device']}",
                 "budget": zero_shot["benchmark"]["budget"],
                 "base_checkpoint_sha256": zero_shot["base_checkpoint_sha256"],
                 **({"note": note} if note else {}), "record": record}
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / f"fold_{fold}.json"
    path.write_text(json.dumps(published, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the benchmark's --out folder")
    p.add_argument("fold", type=int, help="the support set's fold number (folds/fold_<F>.json)")
    p.add_argument("destination", type=Path, help="folder in the repository, e.g. docs/benchmark_results/...")
    p.add_argument("--command", required=True, help="the benchmark command that produced the run")
    p.add_argument("--commit", required=True, help="the commit of the code the run used")
    p.add_argument("--note", default="", help="anything a reader must know (e.g. a shared machine)")
    args = p.parse_args(argv)
    print(publish(args.run, args.fold, args.destination, args.command, args.commit, args.note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
