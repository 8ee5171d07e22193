"""Stage III set-up: find the genotype, check it fits, and write it into the plans the model folder keeps."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_iac.network.builders import CellOptions
from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.search.genotype_choice import HISTORY_FILE, genotype_of_epoch
from nnunet_iac.network.implanted_network import (base_architecture_of, cells_signature, implanted_architecture,
                                          is_implanted)

GENOTYPE_ENV = "nnUNet_IAC_genotype"
SEARCH_TRAINER = "nnUNetTrainerIACSearch"


class GenotypeConflictError(RuntimeError):
    """Another fold in the same model folder was trained with other cells."""


def default_genotype_path(results_dir: str, dataset_name: str, plans_name: str, configuration: str, fold,
                          search_trainer: str = SEARCH_TRAINER) -> Path:
    return (Path(results_dir) / dataset_name / f"{search_trainer}__{plans_name}__{configuration}" / f"fold_{fold}"
            / "genotype.json")


def find_search_genotype(results_dir: str, dataset_name: str, plans_name: str, configuration: str, fold,
                         search_trainer: str = SEARCH_TRAINER) -> Path:
    """The genotype of ``search_trainer``'s search of this fold; if that search was not run, the one search
    variant (``nnUNetTrainerIACSearch_*``) that was, so that a user who searched with a variant changes nothing
    but ``-tr`` for the retrain either. Several variants are ambiguous and refused, naming them."""
    preferred = default_genotype_path(results_dir, dataset_name, plans_name, configuration, fold, search_trainer)
    if preferred.is_file():
        return preferred
    pattern = f"{SEARCH_TRAINER}*__{plans_name}__{configuration}/fold_{fold}/genotype.json"
    found = sorted((Path(results_dir) / dataset_name).glob(pattern))
    if len(found) > 1:
        names = ", ".join(p.parents[1].name.split("__")[0] for p in found)
        raise GenotypeError(f"No search by {search_trainer} for fold {fold}, but several search variants ({names}) "
                            f"have a genotype for it; set {GENOTYPE_ENV} to the genotype.json to retrain, e.g. "
                            f"{GENOTYPE_ENV}={found[0]}.")
    return found[0] if found else preferred


def load_retrain_genotype(default_path: Path | None, override: str = "", epoch: int = -1) -> tuple[Genotype, Path]:
    """The genotype Stage III trains and the file it came from: the final genotype (``genotype.json``), or with
    ``epoch`` >= 0 the one of that search epoch from the ``search_history.json`` next to it."""
    path = Path(override).expanduser() if override else default_path
    if epoch >= 0:
        history = path.parent / HISTORY_FILE
        return genotype_of_epoch(history, epoch), history
    if not path.is_file():
        origin = f"{GENOTYPE_ENV}={override}" if override else "the search of the same dataset/plans/configuration/fold"
        raise GenotypeError(f"No genotype found at {path} (from {origin}). Run nnUNetTrainerIACSearch for this fold "
                            f"first, or set {GENOTYPE_ENV} to a genotype.json file.")
    return Genotype.load(path), path


def check_genotype_fits(genotype: Genotype, source: Path, base_architecture: dict, patch_size) -> None:
    """Refuse a genotype searched on a network of another dimensionality or depth."""
    dims, levels = genotype.meta.get("spatial_dims"), genotype.meta.get("levels")
    ours_dims = len(patch_size)
    ours_levels = base_architecture["arch_kwargs"]["n_stages"] - 1
    fix = f"Use a genotype searched for this configuration (set {GENOTYPE_ENV}) or run the search for it."
    if dims is not None and dims != ours_dims:
        raise GenotypeError(f"{source} was searched on a {dims}D network; this configuration is {ours_dims}D. {fix}")
    if levels is not None and levels != ours_levels:
        raise GenotypeError(f"{source} was searched on a network with {levels} decoder levels; this one has "
                            f"{ours_levels}. {fix}")


def plans_with_cells(plans: dict, configuration: str, genotype: Genotype, options: CellOptions) -> dict:
    """A copy of ``plans`` whose ``configuration`` builds the base with ``genotype`` cells implanted."""
    plans = copy.deepcopy(plans)
    resolved = PlansManager(plans).get_configuration(configuration).configuration
    base = base_architecture_of(resolved["architecture"])
    plans["configurations"][configuration]["architecture"] = implanted_architecture(base, genotype, options)
    return plans


def check_no_conflicting_fold(output_folder_base: Path, configuration: str, architecture: dict, fold) -> None:
    """Folds in one model folder share one network (nnU-Net ensembles them): refuse other cells."""
    plans_file = Path(output_folder_base) / "plans.json"
    if not plans_file.is_file():
        return
    existing = json.loads(plans_file.read_text())["configurations"].get(configuration, {}).get("architecture", {})
    if not is_implanted(existing) or cells_signature(existing) == cells_signature(architecture):
        return
    trained = sorted(p.parent.name for p in Path(output_folder_base).glob("fold_*/checkpoint_*.pth")
                     if p.parent.name != f"fold_{fold}")
    if not trained:
        return
    raise GenotypeConflictError(
        f"{output_folder_base} already holds {', '.join(trained)} trained with other cells (genotype or cell "
        f"options in {plans_file}), and nnU-Net predicts every fold of a model folder with one network. Keep "
        f"them apart with a separate plans identifier (copy nnUNetPlans.json in nnUNet_preprocessed to e.g. "
        f"nnUNetPlans_IACfold{fold}.json, pass -p nnUNetPlans_IACfold{fold} and set nnUNet_IAC_base and "
        f"{GENOTYPE_ENV} to this fold's base and genotype), or retrain this fold with the "
        f"same genotype ({GENOTYPE_ENV}=<that folder>/fold_X/genotype.json).")
