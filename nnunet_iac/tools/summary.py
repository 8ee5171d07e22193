"""Base vs IAC for one dataset and configuration, from the files nnU-Net and nnunet-iac leave behind.

Validation Dice per class comes from nnU-Net's own ``validation/summary.json`` of every fold; the base
of each fold is the one the retrain used (``iac_settings.json``), so bases trained with any trainer are
compared correctly. A base trained on another dataset (adapting to a new site) is left out of the comparison:
its validation cases are that dataset's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implanted_network import is_implanted
from nnunet_iac.nnunet.evaluation import label_names, read_dice
from nnunet_iac.nnunet.model_folder import model_folder_parameters
from nnunet_iac.search.probe_history import PROBE_HISTORY_FILE
from nnunet_iac.search.signal_history import load_signal_rows

RETRAIN_TRAINER = "nnUNetTrainerIACRetrain"


class SummaryError(RuntimeError):
    """The folders a summary needs are not there."""


@dataclass
class FoldResult:
    fold: str
    base_folder: Path
    base_dice: dict
    iac_dice: dict
    #: the retrain's cell probes (probe_history.json): first and last probed epoch, mean stable rank per operation
    probes: dict | None = None
    #: the dataset the base was trained and validated on, when it is another one (adapting to a new site)
    base_dataset: str | None = None


def probe_trend(fold_folder: Path) -> dict | None:
    """First and last row of a fold's probe_history.json, as mean stable rank (and Adas rate) per operation."""
    rows = load_signal_rows(Path(fold_folder) / PROBE_HISTORY_FILE)
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    return {"epochs": [first["epoch"], last["epoch"]],
            "stable_rank": {op: [first["operations"].get(op, {}).get("stable_rank"), s["stable_rank"]]
                            for op, s in last["operations"].items()},
            "learning_rates": last.get("learning_rates")}


@dataclass
class Summary:
    dataset: str
    configuration: str
    genotype: Genotype
    base_parameters: int
    added_parameters: int
    folds: list[FoldResult] = field(default_factory=list)

    def markdown(self) -> str:
        labels = sorted({k for f in self.folds for k in f.base_dice} | {k for f in self.folds for k in f.iac_dice},
                        key=lambda k: (k != "mean", k))
        lines = [f"## nnunet-iac summary: {self.dataset}, {self.configuration}", "",
                 "Validation Dice (nnU-Net's validation/summary.json of each fold):", "",
                 "| fold | class | base | IAC | IAC - base |", "|---|---|---|---|---|"]
        for f in self.folds:
            for label in labels:
                b, i = f.base_dice.get(label), f.iac_dice.get(label)
                delta = f"{i - b:+.4f}" if b is not None and i is not None else "n/a"
                lines.append(f"| {f.fold} | {label} | {_fmt(b)} | {_fmt(i)} | {delta} |")
        for f in self.folds:
            if f.base_dataset:
                lines += ["", f"Fold {f.fold}: the base ({f.base_folder}) was validated on {f.base_dataset}, not on "
                              f"this dataset's cases, so its Dice is left out. To compare, predict this fold's "
                              f"validation cases with the base (nnUNetv2_predict_from_modelfolder -i IN -o OUT "
                              f"-m {f.base_folder.parent} -f {f.fold}) and score them with nnUNetv2_evaluate_folder."]
        probed = [f for f in self.folds if f.probes]
        if probed:
            lines += ["", "Cell probes of the retrain (stable rank of the EVBMF low-rank part, mean per operation; "
                          "0 = indistinguishable from noise; probe_history.json, probe.png):", "",
                      "| fold | operation | first epoch | last epoch | Adas rate (last) |", "|---|---|---|---|---|"]
            for f in probed:
                e0, e1 = f.probes["epochs"]
                for op, (first, last) in f.probes["stable_rank"].items():
                    rate = (f.probes["learning_rates"] or {}).get(op)
                    lines.append(f"| {f.fold} | {op} | {_fmt(first)} (epoch {e0}) | {_fmt(last)} (epoch {e1}) | "
                                 f"{'n/a' if rate is None else f'{rate:.2e}'} |")
        lines += ["", f"Parameters: base {self.base_parameters:,}, added by the cells {self.added_parameters:,} "
                      f"({100 * self.added_parameters / max(1, self.base_parameters):.2f} %).", "",
                  "Genotype:", "", "```", self.genotype.describe(), "```"]
        return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _base_fold_folder(fold_folder: Path) -> Path:
    settings = fold_folder / "iac_settings.json"
    if not settings.is_file():
        raise SummaryError(f"{settings} is missing; was this fold trained with nnUNetTrainerIACRetrain?")
    return Path(json.loads(settings.read_text())["base_checkpoint"]).parent


def _other_base_dataset(base_fold_folder: Path, dataset_name: str) -> str | None:
    """The dataset the base was trained on, from its model folder's plans.json, if it is not ``dataset_name``: then
    its validation Dice is of other cases and not comparable."""
    plans = base_fold_folder.parent / "plans.json"
    theirs = json.loads(plans.read_text()).get("dataset_name") if plans.is_file() else None
    return theirs if theirs not in (None, dataset_name) else None


def summarize(results_dir: Path, dataset_name: str, configuration: str, plans_name: str = "nnUNetPlans") -> Summary:
    folder = Path(results_dir) / dataset_name / f"{RETRAIN_TRAINER}__{plans_name}__{configuration}"
    plans_file = folder / "plans.json"
    if not plans_file.is_file():
        raise SummaryError(f"No retrained IAC model at {folder}. Run nnUNetv2_train {dataset_name} {configuration} "
                           f"FOLD -tr {RETRAIN_TRAINER} first.")
    plans = PlansManager(str(plans_file))
    config = plans.get_configuration(configuration)
    architecture = config.configuration["architecture"]
    if not is_implanted(architecture):
        raise SummaryError(f"{plans_file} describes no implanted network for {configuration}.")
    base_parameters, added = model_folder_parameters(folder, configuration)
    summary = Summary(dataset_name, configuration, Genotype.from_dict(architecture["arch_kwargs"]["iac_genotype"]),
                      base_parameters, added)
    names = label_names(json.loads((folder / "dataset.json").read_text()))
    for fold_folder in sorted(folder.glob("fold_*")):
        iac_file = fold_folder / "validation" / "summary.json"
        if not iac_file.is_file():
            continue
        base_folder = _base_fold_folder(fold_folder)
        base_file = base_folder / "validation" / "summary.json"
        other_dataset = _other_base_dataset(base_folder, dataset_name)
        comparable = base_file.is_file() and other_dataset is None
        summary.folds.append(FoldResult(fold_folder.name.removeprefix("fold_"), base_folder,
                                        read_dice(base_file, names) if comparable else {},
                                        read_dice(iac_file, names), probe_trend(fold_folder), other_dataset))
    if not summary.folds:
        raise SummaryError(f"No fold in {folder} has finished its validation (validation/summary.json).")
    return summary
