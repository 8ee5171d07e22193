"""A short Stage III of one candidate genotype that trains on train_search and validates on val_search.

``nnunet-iac select`` compares candidate genotypes by retraining each briefly. Training them on the
fold's training cases and scoring them on val_search would leak (val_search is part of those cases),
and scoring them on the fold's validation cases would select on the set that is reported (the paper's
optimism). So this trainer replaces nnU-Net's split with the search's own: ``do_split`` returns
(train_search, val_search), and nnU-Net's unchanged final validation writes ``validation/summary.json``
on val_search only. The split is read from ``search_split.json`` in the trial's fold folder, where
``nnunet-iac select`` copies the search's split before it starts the trial.
"""
from __future__ import annotations

import json
from pathlib import Path

from nnunet_iac.nnunet.retrain_trainer import IACRetrainTrainer
from nnunet_iac.search.split import SPLIT_FILE, SearchSplitError


def read_trial_split(path: Path, fold_train_keys, fold) -> tuple[list[str], list[str]]:
    """(train_search, val_search) from a saved search split, which must divide the fold's training cases."""
    if not path.is_file():
        raise SearchSplitError(
            f"{path} is missing: a genotype trial trains on the search's train_search cases and validates on its "
            f"val_search cases. Run it through 'nnunet-iac select' (which copies the search's {SPLIT_FILE} there), "
            f"or copy the {SPLIT_FILE} of the search of this fold into {path.parent}.")
    saved = json.loads(path.read_text())
    train, val = list(saved.get("train_search", [])), list(saved.get("val_search", []))
    if not train or not val or sorted(train + val) != sorted(str(k) for k in fold_train_keys):
        raise SearchSplitError(
            f"{path} does not split the training cases of fold {fold} into train_search and val_search (it holds "
            f"{len(train)} + {len(val)} cases, the fold has {len(fold_train_keys)} training cases). Copy the "
            f"{SPLIT_FILE} of the search of this fold, dataset and configuration.")
    return train, val


class TrialSplitMixin:
    """``do_split`` returns the search's (train_search, val_search); first among the bases of a Stage-III trainer
    (a recipe's own split, e.g. the benchmark's selection split, is the one the search divided)."""

    def do_split(self):
        fold_train_keys, _ = super().do_split()
        train, val = read_trial_split(Path(self.output_folder) / SPLIT_FILE, fold_train_keys, self.fold)
        self.print_to_log_file(f"Genotype trial split ({SPLIT_FILE}): training on {len(train)} train_search cases "
                               f"{train}, validating on {len(val)} val_search cases {val}; the fold's validation "
                               f"cases are not used.")
        return train, val


class IACRetrainTrialTrainer(TrialSplitMixin, IACRetrainTrainer):
    """Stage III on train_search, validated on val_search: the fold's validation cases stay untouched."""
