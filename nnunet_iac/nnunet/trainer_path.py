"""Where the nnU-Net trainer classes of this package live, for ``nnUNet_extTrainer``."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def trainers_dir() -> Path:
    """The folder of ``nnunet_iac.trainers``, found without importing it: the trainer classes sit above this
    layer (they subclass its trainers), and an editable install maps them to the repository's ``trainers/``."""
    spec = importlib.util.find_spec("nnunet_iac.trainers")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def ext_trainer_value(current: str | None = None) -> str:
    """``nnUNet_extTrainer`` with our folder first, keeping folders the user already set."""
    ours = str(trainers_dir())
    current = os.environ.get("nnUNet_extTrainer", "") if current is None else current
    others = [p for p in current.split(os.pathsep) if p and p != ours]
    return os.pathsep.join([ours, *others])


def export_line() -> str:
    return f'export nnUNet_extTrainer="{ext_trainer_value()}"'
