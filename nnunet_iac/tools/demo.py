"""``nnunet-iac demo``: the whole IAC loop on a small synthetic dataset through nnU-Net's own commands.

Synthetic data (it says so), CPU, short budgets: plan/preprocess -> base training -> search -> retrain ->
predict the held-out cases with base and IAC -> nnU-Net's evaluation -> summary table. Every file stays
in one folder, named at the start; a log of every command is kept there.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nnunet_iac.nnunet.evaluation import label_names, read_dice
from nnunet_iac.tools.summary import summarize
from nnunet_iac.tools.synthetic_dataset import make_synthetic_dataset
from nnunet_iac.nnunet.trainer_path import ext_trainer_value

DATASET_ID = 990
DATASET = "Dataset990_IACSynthetic"
CONFIGURATION = "2d"
BASE_TRAINER = "nnUNetTrainer_5epochs"
BUDGET = {"nnUNet_IAC_epochs": "6", "nnUNet_IAC_warmup_epochs": "2", "nnUNet_IAC_iterations_per_epoch": "50",
          "nnUNet_IAC_val_iterations_per_epoch": "10", "nnUNet_IAC_stable_epochs": "0"}
RETRAIN_BUDGET = {"nnUNet_IAC_epochs": "5", "nnUNet_IAC_iterations_per_epoch": "100",
                  "nnUNet_IAC_val_iterations_per_epoch": "10"}


class DemoStepError(RuntimeError):
    """One of nnU-Net's commands failed during the demo."""


class Demo:
    def __init__(self, folder: Path, device: str = "cpu"):
        self.folder = folder.resolve()
        self.device = device
        self.log = self.folder / "demo_log.txt"
        self.env = {**os.environ,
                    "nnUNet_raw": str(self.folder / "nnUNet_raw"),
                    "nnUNet_preprocessed": str(self.folder / "nnUNet_preprocessed"),
                    "nnUNet_results": str(self.folder / "nnUNet_results"),
                    "nnUNet_extTrainer": ext_trainer_value(),
                    "nnUNet_n_proc_DA": os.environ.get("nnUNet_n_proc_DA", "0"),
                    "nnUNet_def_n_proc": os.environ.get("nnUNet_def_n_proc", "1")}
        for key in [k for k in self.env if k.startswith("nnUNet_IAC_")]:
            del self.env[key]
        self.results = self.folder / "nnUNet_results" / DATASET
        self.timings = {}

    def run(self, title: str, *command: str, env: dict | None = None) -> None:
        print(f"  {title} ...", flush=True)
        start = time.time()
        executable = Path(sys.executable).parent / command[0]
        with open(self.log, "a") as log:
            log.write(f"\n$ {' '.join(command)}\n")
            log.flush()
            result = subprocess.run([str(executable), *command[1:]], env={**self.env, **(env or {})},
                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        self.timings[title] = time.time() - start
        if result.returncode != 0:
            tail = self.log.read_text()[-3000:]
            raise DemoStepError(f"'{' '.join(command)}' failed (exit {result.returncode}); see {self.log}:\n{tail}")
        print(f"    done in {self.timings[title]:.0f} s", flush=True)

    def train(self, title, trainer, env=None):
        self.run(title, "nnUNetv2_train", str(DATASET_ID), CONFIGURATION, "0", "-tr", trainer, "-device",
                 self.device, env=env)

    def predict_and_evaluate(self, name: str, trainer: str) -> dict:
        raw = self.folder / "nnUNet_raw" / DATASET
        out = self.folder / "test_predictions" / name
        self.run(f"predict test cases ({name})", "nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out),
                 "-d", str(DATASET_ID), "-c", CONFIGURATION, "-f", "0", "-tr", trainer, "-device", self.device,
                 "-npp", "1", "-nps", "1")
        model = self.results / f"{trainer}__nnUNetPlans__{CONFIGURATION}"
        self.run(f"evaluate test cases ({name})", "nnUNetv2_evaluate_folder", str(raw / "labelsTs"), str(out),
                 "-djfile", str(model / "dataset.json"), "-pfile", str(model / "plans.json"), "-np", "1")
        return read_dice(out / "summary.json", label_names(json.loads((model / "dataset.json").read_text())))

    def main(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        print(f"nnunet-iac demo: all files go to {self.folder}")
        print("The data are SYNTHETIC (noisy volumes with two ellipsoids), made up for this demo, not medical "
              "images; budgets are tiny, so the numbers show that the pipeline works, not what IAC gains.")
        if not (self.folder / "nnUNet_raw" / DATASET).is_dir():
            make_synthetic_dataset(self.env["nnUNet_raw"], DATASET_ID, num_cases=20, num_test_cases=4)
        steps = 7
        print(f"[1/{steps}] plan and preprocess")
        self.run("plan and preprocess", "nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", CONFIGURATION,
                 "-np", "1", "-npfp", "1", env={"nnUNet_n_proc_DA": "1"})
        print(f"[2/{steps}] base training ({BASE_TRAINER})")
        self.train("base training", BASE_TRAINER)
        base = str(self.results / f"{BASE_TRAINER}__nnUNetPlans__{CONFIGURATION}")
        print(f"[3/{steps}] search (nnUNetTrainerIACSearch, {BUDGET['nnUNet_IAC_epochs']} epochs)")
        self.train("search", "nnUNetTrainerIACSearch", {**BUDGET, "nnUNet_IAC_base": base})
        print(f"[4/{steps}] retrain (nnUNetTrainerIACRetrain, {RETRAIN_BUDGET['nnUNet_IAC_epochs']} epochs)")
        self.train("retrain", "nnUNetTrainerIACRetrain", {**RETRAIN_BUDGET, "nnUNet_IAC_base": base})
        print(f"[5/{steps}] predict + evaluate held-out cases with the base")
        base_test = self.predict_and_evaluate("base", BASE_TRAINER)
        print(f"[6/{steps}] predict + evaluate held-out cases with IAC")
        iac_test = self.predict_and_evaluate("iac", "nnUNetTrainerIACRetrain")
        print(f"[7/{steps}] summary")
        report = self.report(base_test, iac_test)
        (self.folder / "demo_summary.md").write_text(report + "\n")
        (self.folder / "demo_timings.json").write_text(json.dumps(self.timings, indent=2))
        return report

    def report(self, base_test: dict, iac_test: dict) -> str:
        lines = [summarize(self.folder / "nnUNet_results", DATASET, CONFIGURATION).markdown(), "",
                 "Held-out test cases (nnUNetv2_predict + nnUNetv2_evaluate_folder):", "",
                 "| class | base | IAC | IAC - base |", "|---|---|---|---|"]
        for label in sorted(base_test, key=lambda k: (k != "mean", k)):
            lines.append(f"| {label} | {base_test[label]:.4f} | {iac_test[label]:.4f} | "
                         f"{iac_test[label] - base_test[label]:+.4f} |")
        lines += ["", "Wall time per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in self.timings.items())]
        return "\n".join(lines)


def main(folder: str, device: str = "cpu") -> int:
    demo = Demo(Path(folder), device)
    try:
        print("\n" + demo.main())
    except DemoStepError as e:
        print(f"demo stopped: {e}", file=sys.stderr)
        return 1
    return 0
