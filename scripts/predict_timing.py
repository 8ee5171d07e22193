"""Prediction time of benchmark arms relative to the base, measured in one run.

The benchmark times each arm's ``nnUNetv2_predict`` once, when the arm is first predicted, and divides by the
base's time from the same sitting (``nnunet_iac.benchmark.predict_time``; the machine's speed differs between
sittings by up to ~40 %). Within a sitting the machine drifts too, and one timing per arm cannot show it. This
script runs the benchmark's own prediction commands again (from ``results.json``), interleaved round by round
so that drift hits every arm alike, into a scratch folder, and prints each arm's mean time over the first arm's.

    python scripts/predict_timing.py BENCH_OUT base,iac_seed12345,iac_lean_seed12345 --rounds 2

``--parts K`` predicts every K-th case only (nnUNetv2_predict's own ``-num_parts K -part_id 0``), the same cases
for every arm, where one prediction of all cases takes minutes (DSB2018: ~140 cases at ~2 s each).

Run it alone on the machine, as any benchmark.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnunet_iac.benchmark.run_benchmark import subprocess_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder (with results.json)")
    parser.add_argument("arms", help="comma-separated arm names; the first is the reference (e.g. base)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", type=int, default=1,
                        help="predict every PARTS-th case only, the same ones for every arm (default 1: all)")
    args = parser.parse_args(argv)
    out = args.out.expanduser().resolve()
    stages = json.loads((out / "results.json").read_text())["stages"]
    arms = [a for a in args.arms.split(",") if a]
    missing = [a for a in arms if f"predict ({a})" not in stages]
    if missing:
        parser.error(f"{out / 'results.json'} has no prediction of {', '.join(missing)}")
    if args.rounds < 1 or args.parts < 1:
        parser.error("--rounds and --parts must be at least 1")
    env = subprocess_env(out)
    predict = str(Path(sys.executable).with_name("nnUNetv2_predict"))
    times: dict[str, list[float]] = {a: [] for a in arms}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for arm in arms:
                command = shlex.split(stages[f"predict ({arm})"]["command"])
                command[0] = predict
                command[command.index("-o") + 1] = str(Path(scratch) / arm)
                command += ["-num_parts", str(args.parts), "-part_id", "0"]
                started = time.time()
                subprocess.run(command, env=env, check=True, capture_output=True)
                times[arm].append(time.time() - started)
                print(f"round {round_}: {arm} {times[arm][-1]:.1f} s", flush=True)
    reference = sum(times[arms[0]]) / args.rounds
    for arm in arms:
        mean = sum(times[arm]) / args.rounds
        print(f"{arm}: {', '.join(f'{t:.1f}' for t in times[arm])} s; {mean / reference:.3f}x {arms[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
