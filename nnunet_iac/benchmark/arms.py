"""The arms, each through nnU-Net's own commands: training, nnUNetv2_predict, nnUNetv2_evaluate_folder.

- base: ``nnUNetTrainerBench`` (nnU-Net's trainer with the benchmark's short budget);
- IAC: ``nnUNetTrainerIACSearch`` then ``nnUNetTrainerIACRetrain`` on the frozen base, one pair per seed,
  each seed under its own plans name (see nnunet_iac/benchmark/plans.py);
- selected (``--select N``): ``nnunet-iac select`` trains the N most frequent genotypes of the seeds'
  searches with IAC's Stage-III budget and keeps the best on val_search; that genotype is retrained like IAC;
- trial-chosen evolution (``--select-evolution NAME``): ``nnunet-iac select --from-evolution`` on each
  seed's search of the evolutionary variant NAME trains one point per number of cell levels with IAC's
  Stage-III budget and keeps the cheapest near the best on val_search; retrained like IAC as
  ``iac_NAME_trials_seed<S>`` (variant names have no underscore, so no variant of the user's has that name);
- random genotypes: ``nnUNetTrainerIACRetrain`` with a genotype drawn uniformly from the search's space
  (nnunet_iac.search.random_genotype), the IAC arm's Stage-III budget, one plans name per draw;
- controls (``--controls``), per seed: the base fine-tuned for as many training batches as the IAC arm
  consumed (see measures.iac_batches), rounded up to whole epochs: ``restart`` (all weights, nnU-Net's
  schedule restarted), ``lowlr`` (all weights, a low constant rate), ``decoder`` (the decoder alone).

Trainer names above are the ``short`` regime's; ``--regime paper`` runs the same arms with the IAC paper's
recipe (nnunet_iac/benchmark/regimes.py).

Every arm predicts the validation and test cases in one nnUNetv2_predict call (file names prefixed
with the set, so cases of the two sets can share a name) and each set is evaluated on its own.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from nnunet_iac.nnunet.settings import PREFIX, IACSettings, SettingsError
from nnunet_iac.nnunet.evaluation import label_names, read_dice

from nnunet_iac.benchmark import arm_names
from nnunet_iac.benchmark.budgets import Budget
from nnunet_iac.benchmark.regimes import SHORT, Regime
from nnunet_iac.benchmark.datasets import CaseSet, channel_count, image_names
from nnunet_iac.benchmark.case_dice import evaluation_summary
from nnunet_iac.benchmark.plans import BENCH_PLANS, CONFIGURATION, random_plans_name, seed_plans_name, selected_plans_name
from nnunet_iac.benchmark.stages import StageRunner

FOLD = 0
# nnU-Net saves checkpoint_latest every 50 epochs; the IAC trainers do the same here so that per-epoch
# checkpoint writes do not weigh on one side of the iteration-time ratio
SAVE_EVERY = "50"
# the base's latest checkpoint every 5 epochs (a write of a few MB against minutes of training), so that a base
# interrupted by the end of a sitting continues close to where it stopped
BASE_SAVE_EVERY = "5"
# what the benchmark sets itself for every IAC stage (budget, seed, base, validation): not --iac-setting's
BENCHMARK_OWNED = ("epochs", "iterations_per_epoch", "val_iterations_per_epoch", "warmup_epochs", "stable_epochs",
                   "seed", "base", "genotype", "save_every", "search_validation", "retrain_validation")


def parse_iac_settings(items: list[str]) -> dict[str, str]:
    """``--iac-setting NAME=VALUE`` items as nnUNet_IAC_* variables, checked as the trainers would check them,
    so a typo stops the benchmark before an hour of base training instead of at the search."""
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().removeprefix(PREFIX)
        if not sep or not name:
            raise SettingsError(f"--iac-setting {item!r} is not NAME=VALUE; e.g. --iac-setting init=gate.")
        if name not in IACSettings.__dataclass_fields__:
            raise SettingsError(f"--iac-setting {item!r}: {PREFIX}{name} is not a setting; see docs/configuration.md "
                                f"for the settings.")
        if name in BENCHMARK_OWNED:
            raise SettingsError(f"--iac-setting {item!r}: the benchmark sets {PREFIX}{name} itself (budget, seed, "
                                f"base); use the budget options instead.")
        settings[PREFIX + name] = value
    IACSettings.from_env(settings)
    return settings


@dataclass(frozen=True)
class Arm:
    name: str
    trainer: str
    plans: str
    #: nnU-Net's fold: 0 in the same-dataset benchmark; one per support set in the adaptation benchmark
    fold_index: int = FOLD

    def folder(self, results: Path) -> Path:
        return results / f"{self.trainer}__{self.plans}__{CONFIGURATION}"

    def fold(self, results: Path) -> Path:
        return self.folder(results) / f"fold_{self.fold_index}"


def base_arm(regime: Regime = SHORT) -> Arm:
    return Arm(arm_names.BASE, regime.base_trainer, BENCH_PLANS)


@dataclass(frozen=True)
class IACVariant:
    """IAC with other settings than the run's (``--iac-variant lth:strategy=lth``), searched and retrained from
    the same base per seed; ``name`` "" is the run's own IAC arm, the reference."""
    name: str = ""
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def env(self) -> dict[str, str]:
        return dict(self.settings)


REFERENCE = IACVariant()


def iac_arm(seed: int, regime: Regime = SHORT, variant: str = "") -> Arm:
    return Arm(arm_names.seeded(arm_names.iac_group(variant), seed), regime.retrain_trainer,
               seed_plans_name(seed, variant))


def selected_arm(regime: Regime = SHORT) -> Arm:
    return Arm(arm_names.SELECTED, regime.retrain_trainer, selected_plans_name())


def evolution_trials_arm(seed: int, regime: Regime, variant: str) -> Arm:
    """The retrain of the genotype Stage-III trials chose among an evolution's points: the group
    ``iac_<variant>_trials``, compared with the reference IAC arm like a variant."""
    return iac_arm(seed, regime, arm_names.trials_variant(variant))


def evolution_trials_stage(variant: str, seed: int) -> str:
    return f"select evolution by trials ({variant}, seed {seed})"


def random_arm(seed: int, regime: Regime = SHORT) -> Arm:
    return Arm(arm_names.seeded(arm_names.RANDOM, seed), regime.retrain_trainer, random_plans_name(seed))


def control_arm(kind: str, seed: int, first_seed: int, regime: Regime = SHORT) -> Arm:
    """The control of ``kind`` for one seed; the first seed keeps the bare name and the benchmark plans (the
    folder of a run made before controls had seeds)."""
    name, trainer = arm_names.CONTROLS[kind], regime.control_trainers[kind]
    if seed == first_seed:
        return Arm(name, trainer, BENCH_PLANS)
    return Arm(arm_names.seeded(name, seed), trainer, seed_plans_name(seed))


def control_stage(arm: Arm) -> str:
    return "control training" if arm.name == arm_names.CONTROLS["restart"] else f"{arm.name} training"


def search_arm(seed: int, regime: Regime = SHORT, variant: str = "") -> Arm:
    kind = f"search_{variant}" if variant else "search"
    return Arm(f"{kind}_seed{seed}", regime.search_trainer, seed_plans_name(seed, variant))


def search_stage(seed: int, variant: str = "") -> str:
    """``search (seed N)`` (the reference's stage name since the first runs), ``search lth (seed N)``."""
    return f"search {variant} (seed {seed})" if variant else f"search (seed {seed})"


BASE = base_arm()
CONTROL = control_arm("restart", 0, 0)


class ArmRunner:
    def __init__(self, runner: StageRunner, dataset_id: int, results: Path, budget: Budget, device: str,
                 iac_settings: dict[str, str] | None = None, regime: Regime = SHORT,
                 base_checkpoint: Path | None = None):
        """``base_checkpoint``: where IAC and the controls start from when the base is another dataset's (the
        adaptation benchmark); by default the base arm of this dataset."""
        self._base_checkpoint = base_checkpoint
        self.regime = regime
        self.runner = runner
        self.dataset_id = dataset_id
        self.results = results
        self.budget = budget
        self.device = device
        self.iac_settings = dict(iac_settings or {})

    def _epochs_env(self, prefix: str, epochs: int) -> dict[str, str]:
        return {f"{prefix}epochs": str(epochs),
                f"{prefix}iterations_per_epoch": str(self.budget.iterations_per_epoch),
                f"{prefix}val_iterations_per_epoch": str(self.budget.val_iterations_per_epoch)}

    def train(self, stage: str, arm: Arm, env: dict[str, str], *extra: str):
        return self.runner.run(stage, "nnUNetv2_train", str(self.dataset_id), CONFIGURATION, str(arm.fold_index),
                               "-tr", arm.trainer, "-p", arm.plans, "-device", self.device, *extra, env=env)

    def train_base(self):
        """The base, continued with nnU-Net's ``--c`` from its latest checkpoint (written every
        ``BASE_SAVE_EVERY`` epochs) when a sitting ended during it: a plateau base may take more than one."""
        return self.train_from_scratch("base training", base_arm(self.regime))

    def train_from_scratch(self, stage: str, arm: Arm, seed: int | None = None, epochs: int | None = None):
        """A model trained from random weights, for the base's epochs unless ``epochs`` is given (the base; in the
        adaptation benchmark also the target-only models), resumable with ``--c``; ``seed`` fixes its generators
        per epoch."""
        env = {**self._epochs_env("nnUNet_BENCH_", epochs or self.budget.base_epochs),
               "nnUNet_BENCH_final_validation": "0", "nnUNet_BENCH_save_every": BASE_SAVE_EVERY}
        if seed is not None:
            env["nnUNet_BENCH_seed"] = str(seed)
        return self.train(stage, arm, env, "--c")

    @property
    def base_checkpoint(self) -> Path:
        """The base checkpoint IAC and the controls start from (the regime's: final, or best epoch)."""
        if self._base_checkpoint is not None:
            return self._base_checkpoint
        return base_arm(self.regime).fold(self.results) / self.regime.checkpoint

    def iac_env(self, seed: int, epochs: int, variant: IACVariant = REFERENCE) -> dict[str, str]:
        return {**self.iac_settings, **variant.env, **self._epochs_env("nnUNet_IAC_", epochs),
                "nnUNet_IAC_seed": str(seed), "nnUNet_IAC_base": str(self.base_checkpoint),
                "nnUNet_IAC_save_every": SAVE_EVERY}

    def search(self, seed: int, variant: IACVariant = REFERENCE):
        """One seed's search (the arm of that seed and variant)."""
        return self.search_as(search_stage(seed, variant.name), search_arm(seed, self.regime, variant.name), seed,
                              variant)

    def search_as(self, stage: str, arm: Arm, seed: int, variant: IACVariant = REFERENCE):
        """A search in ``arm``'s folder; a pruning strategy may end before the budget (its genotype fixed), the
        fixed budget's stable-genotype stop is off for every variant alike."""
        env = {**self.iac_env(seed, self.budget.search_epochs, variant),
               "nnUNet_IAC_warmup_epochs": str(self.budget.warmup_epochs),
               # a fixed budget: no early stop on a stable genotype, so every seed searches as long
               "nnUNet_IAC_stable_epochs": "0",
               # the supernet is not a model anyone predicts with; its final validation costs ~30 s/case on CPU
               "nnUNet_IAC_search_validation": "0"}
        return self.train(stage, arm, env)

    def retrain(self, seed: int, variant: IACVariant = REFERENCE):
        stage = search_stage(seed, variant.name).replace("search", "retrain", 1)
        return self.retrain_as(stage, iac_arm(seed, self.regime, variant.name), seed, variant)

    def retrain_as(self, stage: str, arm: Arm, seed: int, variant: IACVariant = REFERENCE):
        """Stage III in ``arm``'s folder, of the genotype its search (same plans and fold) wrote."""
        env = {**self.iac_env(seed, self.budget.retrain_epochs, variant), "nnUNet_IAC_retrain_validation": "0"}
        return self.train(stage, arm, env)

    def select(self, seed: int, other_seeds: list[int], candidates: int):
        """``nnunet-iac select`` on the first seed's search, the other seeds' histories counted with it; every
        candidate trained with the IAC arm's Stage-III budget and settings, scored on val_search."""
        command = [*self.select_command(seed_plans_name(seed)), "--candidates", str(candidates)]
        if other_seeds:
            command += ["--histories", *(str(search_arm(s, self.regime).fold(self.results)) for s in other_seeds)]
        env = {**self.iac_settings, "nnUNet_IAC_seed": str(seed), "nnUNet_IAC_save_every": SAVE_EVERY}
        return self.runner.run("select genotype", *command, env=env)

    def select_evolution(self, seed: int, variant: IACVariant):
        """``nnunet-iac select --from-evolution`` on one seed's search of an evolutionary variant: a Stage-III
        trial per number of cell levels, with the IAC arm's budget and the variant's settings."""
        command = [*self.select_command(seed_plans_name(seed, variant.name)), "--from-evolution"]
        env = {**self.iac_settings, **variant.env, "nnUNet_IAC_seed": str(seed), "nnUNet_IAC_save_every": SAVE_EVERY}
        return self.runner.run(evolution_trials_stage(variant.name, seed), *command, env=env)

    def select_command(self, plans: str) -> list[str]:
        """``nnunet-iac select`` on the search of ``plans`` in this regime, trials with Stage III's budget."""
        return [sys.executable, "-m", "nnunet_iac.tools.cli", "select", "-d", str(self.dataset_id), "-c",
                CONFIGURATION, "-f", str(FOLD), "-p", plans, "--search-trainer", self.regime.search_trainer,
                "--trial-trainer", self.regime.trial_trainer, "--epochs", str(self.budget.retrain_epochs),
                "--iterations", str(self.budget.iterations_per_epoch),
                "--val-iterations", str(self.budget.val_iterations_per_epoch), "--device", self.device]

    def retrain_genotype(self, stage: str, arm: Arm, seed: int, genotype_file: Path, epochs: int | None = None):
        """Stage III of a given genotype (the selected one, a random draw), with the IAC arm's budget (or
        ``epochs``) and settings and the seed's cell init."""
        epochs = self.budget.retrain_epochs if epochs is None else epochs
        env = {**self.iac_env(seed, epochs), "nnUNet_IAC_retrain_validation": "0",
               "nnUNet_IAC_genotype": str(genotype_file)}
        return self.train(stage, arm, env)

    def control_epochs(self, batches: int) -> int:
        """Whole epochs covering ``batches`` training batches (rounded up: generous to the control)."""
        return math.ceil(batches / self.budget.iterations_per_epoch)

    def train_control(self, arm: Arm, seed: int, batches: int):
        """The control for ``batches`` training batches; where the regime predicts with the best epoch, that epoch
        is chosen among the control's last retrain-epochs epochs only, as many candidates as IAC's retrain has
        (issue 37; nnunet_iac.nnunet.best_epoch_window)."""
        env = {**self._epochs_env("nnUNet_BENCH_", self.control_epochs(batches)),
               "nnUNet_BENCH_final_validation": "0", "nnUNet_BENCH_seed": str(seed),
               "nnUNet_BENCH_initial_checkpoint": str(self.base_checkpoint),
               "nnUNet_BENCH_best_window": str(self.budget.retrain_epochs)}
        return self.train(control_stage(arm), arm, env)

    def predict(self, arm: Arm, sets: list[CaseSet], raw_dataset_json: dict, folder: Path, stage: str | None = None):
        """One nnUNetv2_predict over all sets; inputs linked as ``<set>-<case>_0000.ext``. ``stage`` names a
        prediction made to be timed only (``predict_time``): its output goes to a scratch folder."""
        ending, channels = raw_dataset_json["file_ending"], channel_count(raw_dataset_json)
        inputs = folder / "inputs"
        if not inputs.is_dir():
            inputs.mkdir(parents=True)
            for case_set in sets:
                for case in case_set.cases:
                    for c, name in enumerate(image_names(case, channels, ending)):
                        (inputs / f"{case_set.name}-{case}_{c:04d}{ending}").symlink_to(
                            (case_set.images / name).resolve())
        out = folder / arm.name if stage is None else folder / "timing" / arm.name
        command = ["nnUNetv2_predict", "-i", str(inputs), "-o", str(out / "all"), "-d", str(self.dataset_id),
                   "-c", CONFIGURATION, "-f", str(arm.fold_index), "-tr", arm.trainer, "-p", arm.plans,
                   "-device", self.device,
                   "-npp", "1", "-nps", "1", "-step_size", str(self.budget.step_size), "--disable_progress_bar",
                   "-chk", self.regime.checkpoint]
        if not self.budget.tta:
            command.append("--disable_tta")
        return self.runner.run(stage or f"predict ({arm.name})", *command)

    def evaluate(self, arm: Arm, case_set: CaseSet, raw_dataset_json: dict, folder: Path) -> dict:
        """nnU-Net's evaluation of one set's predictions; Dice per class and mean (nnunet_iac.nnunet.evaluation.read_dice)."""
        ending = raw_dataset_json["file_ending"]
        predicted = folder / arm.name / case_set.name
        predicted.mkdir(parents=True, exist_ok=True)
        for case in case_set.cases:
            link = predicted / f"{case}{ending}"
            if not link.exists():
                link.symlink_to(folder / arm.name / "all" / f"{case_set.name}-{case}{ending}")
        summary = evaluation_summary(folder, arm.name, case_set.name)
        model = arm.folder(self.results)
        self.runner.run(f"evaluate {case_set.name} ({arm.name})", "nnUNetv2_evaluate_folder", str(case_set.labels),
                        str(predicted), "-djfile", str(model / "dataset.json"), "-pfile", str(model / "plans.json"),
                        "-o", str(summary), "-np", "1")
        names = label_names(json.loads((model / "dataset.json").read_text()))
        return read_dice(summary, names)
