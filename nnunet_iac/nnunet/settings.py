"""Knobs without code: ``nnUNet_IAC_*`` environment variables, read once when a trainer starts.

A trainer variant may change the defaults in code, the nnU-Net way (``nnUNetTrainer_250epochs``): a subclass
with ``iac_defaults = {"epochs": 50}`` (``trainer_base``); variables still override a variant's defaults.

Defaults suit a GPU user (the paper searched 500 epochs with 15 warm-up epochs; the cells' chosen
operations typically settle much earlier, so early stopping on a stable genotype is on by default).
Every value in effect is written to the trainer's output folder as ``iac_settings.json``.

Stage III takes the cell options from a genotype that records them (version 2, ``adopt_genotype_options``):
K, width divisor and mode shape the cells the search chose among, so a variable set to another value is
refused; ``init`` may differ, since the retrain builds fresh cells and how they start is a Stage III remedy.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from nnunet_iac.network.base_policy import RETRAIN_BASE_POLICIES
from nnunet_iac.cells.genotype import CELL_OPTION_NAMES, GenotypeError
from nnunet_iac.cells.branching import BRANCHING, OFF
from nnunet_iac.cells.levels import ALL, LevelsError, parse_levels
from nnunet_iac.cells.output_init import INITS
from nnunet_iac.network.builders import CellOptions
from nnunet_iac.network.implant import MODES
from nnunet_iac.search.optimizers import CELL_OPTIMIZERS, RETRAIN_OPTIMIZERS
from nnunet_iac.search.schedules import SEARCH_SCHEDULES
from nnunet_iac.search.cost_aware import COST_FORMS
from nnunet_iac.search.operation_costs import MEASURES
from nnunet_iac.search.strategies import DEFAULT_STRATEGY, STRATEGIES

PREFIX = "nnUNet_IAC_"
#: cell options that shape the cells the search chose among: Stage III must build the same
STRUCTURAL_CELL_OPTIONS = ("k", "width_divisor", "mode", "levels", "branching")


class SettingsError(ValueError):
    """An nnUNet_IAC_* environment variable holds a value nnunet-iac cannot use."""


class GenotypeOptionsConflict(SettingsError):
    """A cell option set in the environment contradicts the one the genotype was searched with."""


_NUMBERS = {"int": (int, "an integer", "a whole number"), "float": (float, "a number", "a number such as 0.001")}
_PYTHON_TYPES = {"int": int, "float": (int, float), "str": str}


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
    levels: str = ALL
    branching: str = OFF
    retrain_base: str = "frozen"
    retrain_base_lr: float = 0.0
    arch_lr: float = 0.0
    genotype_epoch: int = -1
    search_schedule: str = "cosine"
    strategy: str = DEFAULT_STRATEGY
    cost_lambda: float = 0.1
    cost_measure: str = "latency"
    cost_form: str = "additive"
    evolution_population: int = 16
    evolution_generations: int = 8
    evolution_batches: int = 8
    evolution_tolerance: float = 0.005
    evolution_levels: str = "on"
    cell_optimizer: str = "sgd"
    adas_lr: float = 0.0
    adas_beta: float = 0.8
    adas_zeta: float = 1.0
    probe_every: int = 1

    @property
    def cell_options(self) -> CellOptions:
        return CellOptions(k=self.k, width_divisor=self.width_divisor, mode=self.mode, init=self.init,
                           levels=self.levels, branching=self.branching)

    def genotype_cell_options(self) -> dict[str, Any]:
        """The cell options as a genotype records them (by setting name)."""
        return {name: getattr(self, name) for name in CELL_OPTION_NAMES}

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def explicit(env: Mapping[str, str] | None = None) -> frozenset[str]:
        """The settings the environment sets itself; ``from_env`` fills every other one with its default, so
        only these can contradict a genotype."""
        env = os.environ if env is None else env
        return frozenset(f.name for f in fields(IACSettings) if env.get(PREFIX + f.name))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
                 source: str = "defaults") -> "IACSettings":
        """The settings in effect: ``defaults`` (a trainer variant's ``iac_defaults``, named by ``source`` in
        errors) over the built-in ones, and any ``nnUNet_IAC_*`` variable over both."""
        env = os.environ if env is None else env
        unknown = sorted(set(defaults or {}) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(f"{source} names {', '.join(unknown)}, which {'are' if len(unknown) > 1 else 'is'} not "
                                f"a setting; use the names of the {PREFIX}* variables without the prefix (docs/configuration.md).")
        values = dict(defaults or {})
        for f in fields(cls):
            kind = getattr(f.type, "__name__", f.type)
            if f.name in values and not isinstance(values[f.name], _PYTHON_TYPES[kind]):
                what = _NUMBERS[kind][1] if kind in _NUMBERS else "a string"
                raise SettingsError(f"{source} sets {f.name}={values[f.name]!r}; it must be {what}.")
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
                   "search_validation": 0, "retrain_validation": 0, "save_every": 1, "probe_every": 0,
                   "evolution_population": 2, "evolution_generations": 0, "evolution_batches": 1}
        for name, low in minimum.items():
            if getattr(self, name) < low:
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)} must be >= {low}.")
        if not 0 <= self.cost_lambda < float("inf"):
            raise SettingsError(f"{PREFIX}cost_lambda={self.cost_lambda} must be 0 (no cost term) or a positive "
                                f"weight of the expected cost in the architecture loss.")
        if not 0 <= self.evolution_tolerance <= 1:
            raise SettingsError(f"{PREFIX}evolution_tolerance={self.evolution_tolerance} must be a Dice difference "
                                f"between 0 (the front's most accurate genotype) and 1.")
        if not 0 < self.adas_beta <= 1 or not 0 <= self.adas_zeta < float("inf"):
            raise SettingsError(f"{PREFIX}adas_beta={self.adas_beta} must be in (0, 1] and {PREFIX}adas_zeta="
                                f"{self.adas_zeta} 0 or more (Adas: 0.8 and 1).")
        for name in ("retrain_lr", "retrain_base_lr", "arch_lr", "adas_lr"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)} must be a positive learning rate, or 0 "
                                    f"for its default.")
        if self.genotype_epoch < -1:
            raise SettingsError(f"{PREFIX}genotype_epoch={self.genotype_epoch} must be a search epoch (0 or more), "
                                f"or -1 for the search's final genotype.")
        for name, allowed in (("init", INITS), ("retrain_base", RETRAIN_BASE_POLICIES),
                              ("search_schedule", SEARCH_SCHEDULES), ("strategy", tuple(STRATEGIES)),
                              ("cost_measure", MEASURES), ("cost_form", COST_FORMS),
                              ("cell_optimizer", CELL_OPTIMIZERS), ("branching", BRANCHING),
                              ("evolution_levels", ("on", "off"))):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{PREFIX}{name}={getattr(self, name)!r} is not allowed; use one of "
                                    f"{', '.join(allowed)}.")
        if self.strategy == "nsga2" and self.branching == "on":
            raise SettingsError(f"{PREFIX}strategy=nsga2 does not evolve the branches of {PREFIX}branching=on yet; "
                                f"search with {PREFIX}branching=off, or with another strategy (pcdarts, lth, shapley, "
                                f"cost).")
        try:
            parse_levels(self.levels)
        except LevelsError as e:
            raise SettingsError(f"{PREFIX}levels: {e}") from None
        if self.mode not in MODES:
            raise SettingsError(f"{PREFIX}mode={self.mode!r} is not a mode; use one of {', '.join(MODES)}.")
        if self.retrain_optimizer not in RETRAIN_OPTIMIZERS:
            raise SettingsError(f"{PREFIX}retrain_optimizer={self.retrain_optimizer!r} is not an optimizer; use one "
                                f"of {', '.join(RETRAIN_OPTIMIZERS)}.")
        if self.init != "zero" and self.mode != "residual":
            raise SettingsError(f"{PREFIX}init={self.init!r} only applies to {PREFIX}mode=residual (it sets how the "
                                f"cell's output starts next to the merged input); {PREFIX}mode={self.mode!r} has none. "
                                f"Unset {PREFIX}init, or set {PREFIX}mode=residual.")


def explicit_for_genotype(genotype_meta: dict[str, Any], settings: IACSettings,
                          env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The settings the environment sets that the genotype must agree with. An evolution over levels
    (``nnUNet_IAC_evolution_levels=on``) chose among the levels the search's ``nnUNet_IAC_levels`` named; the same
    variable still set for the retrain names those candidates, not a contradiction of the genotype's choice."""
    explicit = IACSettings.explicit(env)
    if (genotype_meta.get("evolution") or {}).get("levels_searched") == settings.levels:
        explicit -= {"levels"}
    return explicit


def settings_for_genotype(settings: IACSettings, genotype, source: str,
                          env: Mapping[str, str] | None = None) -> IACSettings:
    """The settings a Stage III of ``genotype`` runs with (the retrain's and every selection trial's): its cell
    options adopted over ``settings``, the environment's explicit settings checked against them."""
    return adopt_genotype_options(settings, explicit_for_genotype(genotype.meta, settings, env), genotype.cell_options,
                                  source)


def adopt_genotype_options(settings: IACSettings, explicit: frozenset[str], genotype_options: dict[str, Any] | None,
                           source: str) -> IACSettings:
    """The settings Stage III runs with: the genotype's cell options where it records them (version 2), with
    an ``init`` set in the environment kept (the retrain's cells start fresh, so their start is a Stage III
    choice). A structural option (K, width divisor, mode) set in the environment to another value than the
    genotype's is refused, since the cells would differ from those the search compared. A version-1 genotype
    (``genotype_options`` None) leaves the settings as they are."""
    if genotype_options is None:
        return settings
    if genotype_options["mode"] not in MODES:
        raise GenotypeError(f"{source} records mode {genotype_options['mode']!r}, which this nnunet-iac does not "
                            f"build (modes: {', '.join(MODES)}); use the nnunet-iac version that searched it.")
    for name in STRUCTURAL_CELL_OPTIONS:
        ours, theirs = getattr(settings, name), genotype_options[name]
        if name in explicit and ours != theirs:
            raise GenotypeOptionsConflict(
                f"{PREFIX}{name}={ours} contradicts the genotype {source}, which was searched with {name}={theirs}: "
                f"Stage III builds the cells the search chose among. Unset {PREFIX}{name} to use the genotype's "
                f"{theirs}, or search again with {PREFIX}{name}={ours}.")
    kept = explicit & {"init"}
    merged = replace(settings, **{name: genotype_options[name] for name in CELL_OPTION_NAMES if name not in kept})
    merged.validate()
    return merged
