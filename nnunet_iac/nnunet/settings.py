"""Knobs without code: ``nnUNet_IAC_*`` environment variables, read once when a trainer starts.

Defaults suit a GPU user (the paper searched 500 epochs with 15 warm-up epochs; the cells' chosen
operations typically settle much earlier, so early stopping on a stable genotype is on by default).
Every value in effect is written to the trainer's output folder as ``iac_settings.json``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Mapping

from nnunet_iac.network.base_policy import RETRAIN_BASE_POLICIES
from nnunet_iac.cells.output_init import INITS
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import MODES
from nnunet_iac.search.optimizers import RETRAIN_OPTIMIZERS
from nnunet_iac.search.schedules import SEARCH_SCHEDULES

PREFIX = "nnUNet_IAC_"


class SettingsError(ValueError):
    """An nnUNet_IAC_* environment variable holds a value nnunet-iac cannot use."""


_NUMBERS = {"int": (int, "an integer", "a whole number"), "float": (float, "a number", "a number such as 0.001")}


def parse_number(variable: str, raw: str, default, kind: str = "int"):
    """The number (``kind`` int or float) an environment variable holds, or a SettingsError that says how
    to fix it."""
    convert, what, example = _NUMBERS[kind]
    try:
        return convert(raw)
    except ValueError:
        raise SettingsError(f"{variable}={raw!r} is not {what}. Set it to {example}, "
                            f"or unset it to use the default {default}.") from None


def parse_int(variable: str, raw: str, default: int) -> int:
    return parse_number(variable, raw, default, "int")


@dataclass(frozen=True)
class IACSettings:
    epochs: int = 200
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int = 50
    warmup_epochs: int = 15
    stable_epochs: int = 20
    seed: int = 12345
    k: int = 4
    width_divisor: int = 4
    mode: str = "residual"
    retrain_optimizer: str = "adam"
    retrain_lr: float = 0.0
    base: str = ""
    genotype: str = ""
    search_validation: int = 1
    retrain_validation: int = 1
    save_every: int = 1
    init: str = "zero"
    retrain_base: str = "frozen"
    retrain_base_lr: float = 0.0
    arch_lr: float = 0.0
    genotype_epoch: int = -1
    search_schedule: str = "cosine"

    @property
    def cell_options(self) -> CellOptions:
        return CellOptions(partial_k=self.k, width_divisor=self.width_divisor, mode=self.mode, init=self.init)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "IACSettings":
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name)
            if raw is None or raw == "":
                continue
            kind = getattr(f.type, "__name__", f.type)
            if kind in _NUMBERS:
                values[f.name] = parse_number(PREFIX + f.name, raw, f.default, kind)
            else:
                values[f.name] = raw
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        minimum = {"epochs": 1, "iterations_per_epoch": 1, "val_iterations_per_epoch": 0, "warmup_epochs": 0,
                   "stable_epochs": 0, "k": 1, "width_divisor": 1,
                   "search_validation": 0, "retrain_validation": 0, "save_every": 1}
        for name, low in minimum.items():
            if getattr(self, name) < low:
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)} must be >= {low}.")
        for name in ("retrain_lr", "retrain_base_lr", "arch_lr"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)} must be a positive learning rate, or 0 "
                                    f"for its default.")
        if self.genotype_epoch < -1:
            raise SettingsError(f"{PREFIX}genotype_epoch={self.genotype_epoch} must be a search epoch (0 or more), "
                                f"or -1 for the search's final genotype.")
        for name, allowed in (("init", INITS), ("retrain_base", RETRAIN_BASE_POLICIES),
                              ("search_schedule", SEARCH_SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)!r} is not allowed; use one of "
                                    f"{', '.join(allowed)}.")
        if self.mode not in MODES:
            raise SettingsError(f"{PREFIX}mode={self.mode!r} is not a mode; use one of {', '.join(MODES)}.")
        if self.retrain_optimizer not in RETRAIN_OPTIMIZERS:
            raise SettingsError(f"{PREFIX}retrain_optimizer={self.retrain_optimizer!r} is not an optimizer; use one "
                                f"of {', '.join(RETRAIN_OPTIMIZERS)}.")
        if self.init != "zero" and self.mode != "residual":
            raise SettingsError(f"{PREFIX}init={self.init!r} only applies to {PREFIX}mode=residual (it sets how the "
                                f"cell's output starts next to the merged input); {PREFIX}mode={self.mode!r} has none. "
                                f"Unset {PREFIX}init, or set {PREFIX}mode=residual.")
