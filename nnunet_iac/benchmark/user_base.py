"""``--base MODEL_FOLDER``: the adaptation benchmark on the user's own trained source model (issue 36).

A user who asks "would IAC adapt *my* model to a new site?" has an nnU-Net model folder
(``Dataset001_X/nnUNetTrainer__nnUNetPlans__2d``), not the benchmark's short base. The benchmark then trains no
base: the model folder is linked into the run's nnU-Net results (read, never written: its checkpoint's SHA-256 is
checked after every support set), its ``plans.json`` is what gets moved to the target
(``nnUNetv2_move_plans_between_datasets``, as for a base the benchmark trained), and its forgetting cases are the
source cases of its own validation fold, which nnU-Net's final validation wrote into ``fold_F/validation``.

The arms' batch size is the benchmark's budget (``--batch-size`` / the dataset's profile), not the base's plans':
every arm trains the same number of batches of that size, and a plans batch sized for a GPU would make a CPU run
impractical; the batch size does not change the network, so the base still fits the moved plans.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from nnunet_iac.benchmark.arm_names import BASE
from nnunet_iac.benchmark.arms import Arm
from nnunet_iac.benchmark.datasets import DatasetError, channel_count
from nnunet_iac.benchmark.plans import CONFIGURATION
from nnunet_iac.nnunet.base_differences import label_difference, resolved_configuration

#: the name the base's plans get in the run's preprocessed source folder, from where nnU-Net moves them
USER_PLANS = "nnUNetPlans_userbase"
CHECKPOINT = "checkpoint_final.pth"
FOLDER_NAME = re.compile(r"^(?P<trainer>[^_].*?)__(?P<plans>.+)__(?P<configuration>[^_].*)$")


@dataclass(frozen=True)
class UserBase:
    folder: Path
    fold: int
    trainer: str
    plans_name: str
    plans: dict
    dataset_json: dict

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"fold_{self.fold}" / CHECKPOINT

    def arm(self) -> Arm:
        """The base as an arm of the run: predicted under its own trainer and plans names, from its own fold."""
        return Arm(BASE, self.trainer, self.plans_name, self.fold)

    def validation_cases(self, source_cases: list[str]) -> list[str]:
        """The source cases the base did not train on: those nnU-Net's final validation predicted into
        ``fold_F/validation``; each must be a training case of SOURCE_DIR."""
        folder = self.folder / f"fold_{self.fold}" / "validation"
        ending = self.dataset_json["file_ending"]
        found = sorted(p.name[:-len(ending)] for p in folder.glob(f"*{ending}")) if folder.is_dir() else []
        if not found:
            raise DatasetError(f"--base: {folder} holds no validation predictions, which name the source cases the "
                               f"base did not train on (the forgetting cases). Write them with nnU-Net's final "
                               f"validation: nnUNetv2_train DATASET {CONFIGURATION} {self.fold} -tr {self.trainer} "
                               f"-p {self.plans_name} --val.")
        unknown = sorted(set(found) - set(source_cases))
        if unknown:
            raise DatasetError(f"--base: the validation cases of {folder} ({', '.join(unknown[:3])}"
                               f"{', ...' if len(unknown) > 3 else ''}) are not training cases of SOURCE_DIR; pass the "
                               f"raw dataset the base was trained on as SOURCE_DIR.")
        return found


def load_user_base(folder: str | Path, fold: int, target_dataset_json: dict) -> UserBase:
    """The model folder, checked for what the benchmark needs: nnU-Net's folder name, its plans with the 2d
    configuration, the fold's final checkpoint, and the target's labels and channels."""
    # absolute, not resolved: a link named TRAINER__PLANS__2d to a folder named otherwise is a model folder too
    folder = Path(folder).expanduser().absolute()
    match = FOLDER_NAME.match(folder.name)
    if not folder.is_dir() or match is None:
        raise DatasetError(f"--base {folder} is not an nnU-Net model folder (TRAINER__PLANS__CONFIGURATION, e.g. "
                           f"$nnUNet_results/Dataset001_Source/nnUNetTrainer__nnUNetPlans__2d).")
    if match["configuration"] != CONFIGURATION:
        raise DatasetError(f"--base {folder} is a {match['configuration']} model; the adaptation benchmark runs the "
                           f"{CONFIGURATION} configuration: pass the {CONFIGURATION} model folder.")
    for name in ("plans.json", "dataset.json"):
        if not (folder / name).is_file():
            raise DatasetError(f"--base {folder} has no {name}, which nnU-Net writes into the model folder "
                               f"when training starts: pass the model folder itself, "
                               f"$nnUNet_results/DatasetXXX_Name/TRAINER__PLANS__{CONFIGURATION}.")
    plans = json.loads((folder / "plans.json").read_text())
    dataset_json = json.loads((folder / "dataset.json").read_text())
    if CONFIGURATION not in plans.get("configurations", {}):
        raise DatasetError(f"--base {folder}: its plans.json has no {CONFIGURATION} configuration.")
    base = UserBase(folder, fold, match["trainer"], match["plans"], plans, dataset_json)
    if not base.checkpoint.is_file():
        trained = sorted(p.parent.name for p in folder.glob(f"fold_*/{CHECKPOINT}") if p.parent.name[5:].isdigit())
        raise DatasetError(f"--base {folder}: {base.checkpoint} does not exist (a fold that finished training "
                           f"has it). Choose a trained fold with --base-fold"
                           + (f" ({', '.join(trained)})." if trained else "; none of this folder's folds has one."))
    differing = label_difference(dataset_json.get("labels", {}), target_dataset_json.get("labels", {}))
    if differing:
        raise DatasetError(f"--base {folder} was trained with other labels than the target's dataset.json "
                           f"({differing}); the cells keep the base's output heads, so the target must use the "
                           f"base's label names and values.")
    if channel_count(dataset_json) != channel_count(target_dataset_json):
        raise DatasetError(f"--base {folder} takes {channel_count(dataset_json)} input channel(s), the target has "
                           f"{channel_count(target_dataset_json)}; both need the same channels.")
    return base


def write_source_plans(base: UserBase, preprocessed_source: Path) -> str:
    """The base's plans.json and dataset.json put where nnUNetv2_move_plans_between_datasets reads a source's
    plans; returns the plans name to move."""
    preprocessed_source.mkdir(parents=True, exist_ok=True)
    plans = {**base.plans, "plans_name": USER_PLANS}
    (preprocessed_source / f"{USER_PLANS}.json").write_text(json.dumps(plans, indent=2))
    (preprocessed_source / "dataset.json").write_text(json.dumps(base.dataset_json, indent=2))
    return USER_PLANS


def set_arm_batch(plans_file: Path, batch_size: int, patch_size: tuple[int, ...] | None) -> dict:
    """The moved plans with the benchmark's batch (and patch, where the budget sets one) and only the 2d
    configuration; the network and the preprocessing stay the base's."""
    plans = json.loads(plans_file.read_text())
    configuration = resolved_configuration(plans, CONFIGURATION)
    configuration["batch_size"] = batch_size
    if patch_size is not None:
        configuration["patch_size"] = list(patch_size)
    plans["configurations"] = {CONFIGURATION: configuration}
    plans_file.write_text(json.dumps(plans, indent=2))
    return configuration


BASE_RECORD = "base.json"


def check_base_record(out: Path, base: UserBase | None) -> None:
    """The run's base is fixed at its start (``base.json`` in --out): a resumed run with another ``--base``, or
    without the ``--base`` it started with (or with one where the benchmark trained its own), is refused before
    anything runs; otherwise the arms would start from one base while the stages kept from the other stand, and a
    benchmark base trained with ``--c`` could write into a linked model folder."""
    wanted = {"model_folder": str(base.folder), "fold": base.fold} if base else {"model_folder": None}
    record = Path(out) / BASE_RECORD
    if not record.is_file():
        record.write_text(json.dumps(wanted, indent=2))
        return
    started = json.loads(record.read_text())
    if started != wanted:
        was = (f"--base {started['model_folder']} --base-fold {started['fold']}" if started.get("model_folder")
               else "the benchmark's own base (no --base)")
        raise DatasetError(f"This run in {out} was started with {was}; resume it with the same base, or use a new "
                           f"--out for another one.")


def link_into_results(base: UserBase, results_dataset: Path) -> Path:
    """The model folder linked into the run's nnU-Net results of the source dataset, under its own name, so
    nnUNetv2_predict finds it with -d SOURCE -tr TRAINER -p PLANS; an existing link must point at the same
    folder (a resumed run with another --base is refused)."""
    link = results_dataset / base.folder.name
    if link.is_symlink() or link.exists():
        if link.resolve() != base.folder.resolve():
            raise DatasetError(f"--base {base.folder}: this run was started with the base {link.resolve()}; resume it "
                               f"with that --base, or use a new --out.")
        return link
    results_dataset.mkdir(parents=True, exist_ok=True)
    link.symlink_to(base.folder, target_is_directory=True)
    return link
