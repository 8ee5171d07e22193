"""One candidate's trial for ``nnunet-iac select``: a short ``nnUNetv2_train -tr nnUNetTrainerIACRetrainTrial``
(or another trial trainer, ``TrialJob.trainer``)
in its own ``nnUNet_results``, its val_search Dice, and a record that lets a second ``select`` skip it.

The trial is the user's own nnU-Net command in a subprocess, so it runs exactly as Stage III will
(same trainer code, plans, augmentation, device). Its ``nnUNet_results`` is the candidate's folder under
the search's ``select/``, so nothing else in the user's results tree is written.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.search.split import SPLIT_FILE
from nnunet_iac.search.signal_history import json_number
from nnunet_iac.nnunet.evaluation import read_dice

TRIAL_TRAINER = "nnUNetTrainerIACRetrainTrial"
RECORD_FILE = "trial.json"
LOG_FILE = "train.log"
GENOTYPE_FILE = "genotype.json"

#: runs a command with an environment, writing its output to a log file; returns the exit code
Runner = Callable[[list, dict, Path], int]


class TrialError(RuntimeError):
    """A candidate's trial training failed or left no validation result."""


@dataclass(frozen=True)
class TrialJob:
    """What every trial of one selection trains: the search's dataset, configuration, fold and plans, and the trial
    trainer (another recipe's, e.g. the benchmark's paper regime ``nnUNetTrainerIACRetrainPaperTrial``: a trial
    must train as the Stage III it stands for)."""

    dataset: str
    configuration: str
    fold: str
    plans: str = "nnUNetPlans"
    trainer: str = TRIAL_TRAINER


def nnunet_train_executable() -> str:
    """nnU-Net's ``nnUNetv2_train`` of the running environment (next to its Python), else the one on PATH."""
    sibling = Path(sys.executable).parent / "nnUNetv2_train"
    return str(sibling) if sibling.is_file() else "nnUNetv2_train"


def run_logged(command: list, env: dict, log: Path) -> int:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        return subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode


class Trial:
    def __init__(self, folder: Path, job: TrialJob):
        self.folder = Path(folder)
        self.job = job
        self.genotype_file = self.folder / GENOTYPE_FILE
        self.log = self.folder / LOG_FILE
        self.fold_folder = (self.folder / job.dataset / f"{job.trainer}__{job.plans}__{job.configuration}"
                            / f"fold_{job.fold}")

    def finished(self, settings: dict) -> dict | None:
        """The record of an earlier trial of this genotype with the same job and settings, if there is one."""
        path = self.folder / RECORD_FILE
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        same = record.get("job") == asdict(self.job) and record.get("settings") == settings
        return record if same else None

    def run(self, env: dict, settings: dict, split_file: Path, device: str, runner: Runner = run_logged) -> dict:
        """Train and validate the candidate (or return the earlier record); the trial's record."""
        record = self.finished(settings)
        if record is not None:
            return {**record, "resumed": True}
        (self.folder / RECORD_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.fold_folder, ignore_errors=True)
        self.fold_folder.mkdir(parents=True)
        shutil.copyfile(split_file, self.fold_folder / SPLIT_FILE)
        command = [nnunet_train_executable(), self.job.dataset, self.job.configuration, self.job.fold,
                   "-tr", self.job.trainer, "-p", self.job.plans, "-device", device]
        start = time.time()
        code = runner(command, env, self.log)
        seconds = time.time() - start
        summary = self.fold_folder / "validation" / "summary.json"
        if code != 0 or not summary.is_file():
            problem = f"exited with code {code}" if code != 0 else f"left no {summary}"
            raise TrialError(f"The trial of {self.folder.name} ({' '.join(command)}) {problem}. Its output is in "
                             f"{self.log}; fix the cause and run 'nnunet-iac select' again (finished trials are "
                             f"kept).")
        record = {"job": asdict(self.job), "settings": settings,
                  "val_search_dice": json_number(read_dice(summary)["mean"]), "seconds": round(seconds, 1),
                  "summary": str(summary), "log": str(self.log)}
        atomic_write_json(self.folder / RECORD_FILE, record)
        return {**record, "resumed": False}
