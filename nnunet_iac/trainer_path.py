"""Where the nnU-Net trainer classes of this package live, for ``nnUNet_extTrainer``."""
from __future__ import annotations

import os
from pathlib import Path


def trainers_dir() -> Path:
    import nnunet_iac.trainers

    return Path(nnunet_iac.trainers.__file__).resolve().parent


def ext_trainer_value(current: str | None = None) -> str:
    """``nnUNet_extTrainer`` with our folder first, keeping folders the user already set."""
    ours = str(trainers_dir())
    current = os.environ.get("nnUNet_extTrainer", "") if current is None else current
    others = [p for p in current.split(os.pathsep) if p and p != ours]
    return os.pathsep.join([ours, *others])


def export_line() -> str:
    return f'export nnUNet_extTrainer="{ext_trainer_value()}"'
