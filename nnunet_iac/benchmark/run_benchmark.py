"""Benchmark IAC against its base and a fine-tuned control on one dataset, through nnU-Net's commands.

    nnunet-iac benchmark DATASET_DIR --out DIR [--test-images DIR --test-labels DIR]
                         [--seeds N] [--regime short|plateau|paper] [--device cpu|cuda] [budget overrides]

DATASET_DIR is a Decathlon task folder or an nnU-Net raw folder. Fold 0, configuration 2d, every arm at
the same batch and patch size: base (short budget); IAC (search + retrain from the same base, per seed);
random genotypes of the search's space retrained with IAC's Stage-III budget (--random-genotypes); and
controls, the base fine-tuned for as many batches as the IAC arm uses, per seed (--controls: nnU-Net's
schedule restarted, a low constant rate, the decoder alone). Every arm predicts the fold's validation
cases and the test set with nnUNetv2_predict and is evaluated by nnUNetv2_evaluate_folder. Writes
results.json, results.md and dice.png into --out. See docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.nnunet.settings import SettingsError
from nnunet_iac.nnunet.evaluation import label_names, read_dice
from nnunet_iac.nnunet.trainer_path import ext_trainer_value
from nnunet_iac.search.random_genotype import random_genotype
from nnunet_iac.selection.select_genotype import SELECTED_FILE, SELECTION_FILE

from nnunet_iac.benchmark import datasets, measures
from nnunet_iac.benchmark.arm_names import CONTROLS, iac_group, trials_variant
from nnunet_iac.benchmark.arms import (FOLD, REFERENCE, ArmRunner, IACVariant, base_arm, control_arm,
                                       evolution_trials_arm, iac_arm,
                                       parse_iac_settings, random_arm, search_arm, search_stage, selected_arm)
from nnunet_iac.search.strategies import DEFAULT_STRATEGY, STRATEGIES
from nnunet_iac.benchmark.plateau import plateau_check
from nnunet_iac.benchmark.search_dynamics import search_dynamics
from nnunet_iac.benchmark.regimes import REGIMES
from nnunet_iac.benchmark.figure import write_dice_figure
from nnunet_iac.benchmark.forest import forest_rows, write_forest_figure
from nnunet_iac.benchmark.budgets import PAPER, Budget, BudgetError, parse_patch, profile_for
from nnunet_iac.benchmark.plans import (CONFIGURATION, PlansError, random_plans_name, seed_plans_name,
                                        selected_plans_name, write_bench_plans, write_plans_copy)
from nnunet_iac.benchmark.case_dice import arm_cases
from nnunet_iac.benchmark.paired_statistics import paired_comparisons, statistics_method
from nnunet_iac.benchmark.predict_time import needs_base_retime, predict_ratio, retime_stage
from nnunet_iac.benchmark.report import write_results
from nnunet_iac.benchmark.stages import StageError, StageRunner

FIRST_SEED = 12345
HOLDOUT_SEED = 0
TARGETS = {"search_iteration": 1.5, "search_memory": 1.5, "predict_time": 1.2, "added_parameters": 0.15}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnunet-iac benchmark", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET_DIR",
                   help="Decathlon task folder (TaskNN_Name) or nnU-Net raw folder (DatasetNNN_Name)")
    p.add_argument("--out", required=True, help="folder for everything the run writes (must be new unless --resume)")
    p.add_argument("--test-images", help="separate test images, nnU-Net naming CASE_0000.ext")
    p.add_argument("--test-labels", help="labels of the separate test set, CASE.ext")
    p.add_argument("--seeds", type=int, default=1,
                   help="run IAC (search + retrain) and every control with this many seeds (default 1)")
    p.add_argument("--control-seeds", type=int, metavar="N",
                   help="train the controls with the first N seeds only (default: every seed); a comparison of "
                        "strategies needs the IAC arms' seeds, and each control seed costs IAC's batches again")
    p.add_argument("--random-genotypes", type=int, default=3, metavar="N",
                   help="retrain N genotypes drawn uniformly from the search's space with IAC's Stage-III budget "
                        "(default 3; 0 leaves the arm out)")
    p.add_argument("--regime", choices=list(REGIMES), default="short",
                   help="short: nnU-Net's recipe, final checkpoints (default); plateau: the same with a base trained 4x "
                        "longer on a half-width network, until its curve is flat (criterion reported); paper: the IAC "
                        "paper's recipe for every arm (no augmentation, Dice loss, Adam 1e-3 constant, best epoch chosen "
                        "on held-out training cases); see docs/benchmarks.md")
    p.add_argument("--select", type=int, default=0, metavar="N",
                   help="also run nnunet-iac select on the seeds' searches (N candidates, each with IAC's Stage-III "
                        "budget, best on val_search) and retrain its choice as the arm iac_selected (default 0: off)")
    p.add_argument("--select-evolution", action="append", default=[], metavar="VARIANT",
                   help="re-judge the evolution of the variant VARIANT (an --iac-variant with strategy=nsga2) by "
                        "Stage-III trials: nnunet-iac select --from-evolution on each seed's search (one trial per "
                        "number of cell levels, IAC's Stage-III budget, scored on val_search), the choice retrained as "
                        "the arm iac_VARIANT_trials (repeatable)")
    p.add_argument("--controls", default=",".join(CONTROLS), type=_control_kinds,
                   help=f"comma-separated controls, each fine-tuning the base for IAC's batches: restart (all "
                        f"weights, nnU-Net's schedule from lr 1e-2), lowlr (all weights, constant lr 1e-3), "
                        f"decoder (decoder only, nnU-Net's schedule); default {','.join(CONTROLS)}")
    p.add_argument("--iac-variant", action="append", default=[], type=_variant, metavar="NAME:SETTING=VALUE[,...]",
                   help="IAC with other nnUNet_IAC_* settings (over --iac-setting's), searched and retrained with every "
                        "seed from the same base as the arm iac_NAME and compared with the run's own IAC arm, e.g. "
                        "adas:cell_optimizer=adas (repeatable)")
    p.add_argument("--strategies", default=DEFAULT_STRATEGY, type=_strategies,
                   help=f"comma-separated search strategies (nnUNet_IAC_strategy): {DEFAULT_STRATEGY} is the run's "
                        f"own IAC arm and must be among them, every other one a variant iac_<strategy> (short for "
                        f"--iac-variant lth:strategy=lth); default {DEFAULT_STRATEGY}, e.g. pcdarts,lth,shapley")
    p.add_argument("--smoke", action="store_true", help="every stage with a few iterations (for the test suite)")
    p.add_argument("--device", default="cpu", help="device for nnU-Net (default cpu)")
    p.add_argument("--resume", action="store_true", help="go on with an interrupted run in --out")
    p.add_argument("--iac-setting", action="append", default=[], metavar="NAME=VALUE",
                   help="an nnUNet_IAC_* setting for the search and the retrain, without the prefix, e.g. init=gate "
                        "(repeatable; recorded in results.json; the budget and seed settings are the benchmark's)")
    budget = p.add_argument_group("budget overrides (defaults: the dataset's profile, see docs/benchmarks.md)")
    budget.add_argument("--batch-size", type=int)
    budget.add_argument("--patch-size", help="2d patch size, e.g. 128x128 (default: nnU-Net's plan or the profile)")
    budget.add_argument("--iterations-per-epoch", type=int)
    budget.add_argument("--val-iterations-per-epoch", type=int)
    budget.add_argument("--base-epochs", type=int)
    budget.add_argument("--search-epochs", type=int)
    budget.add_argument("--warmup-epochs", type=int)
    budget.add_argument("--retrain-epochs", type=int)
    budget.add_argument("--features-divisor", type=int,
                        help="divide the planned network's features per stage by this, for every arm (default 1; "
                             "2 in the plateau regime)")
    budget.add_argument("--holdout", type=int, help="cases held out as the test set when none is given")
    budget.add_argument("--holdout-seed", type=int, default=HOLDOUT_SEED)
    return p


def _control_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in CONTROLS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown control(s) {', '.join(unknown) or '(none given)'}; choose from "
                                         f"{', '.join(CONTROLS)}")
    if "restart" not in kinds:
        raise argparse.ArgumentTypeError("the restart control is the benchmark's reference (the budget table and "
                                         "results name it); keep 'restart' in --controls")
    return kinds


def _strategies(text: str) -> list[IACVariant]:
    """The strategies besides the default one, as variants named after them."""
    names = list(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in names if k not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown strategy(ies) {', '.join(unknown) or '(none given)'}; choose from "
                                         f"{', '.join(STRATEGIES)}")
    if DEFAULT_STRATEGY not in names:
        raise argparse.ArgumentTypeError(f"{DEFAULT_STRATEGY} is the reference the other strategies are compared "
                                         f"with (and sizes the controls); keep it in --strategies")
    return [IACVariant(n, (("nnUNet_IAC_strategy", n),)) for n in names if n != DEFAULT_STRATEGY]


_VARIANT_NAME = re.compile(r"^[a-z][a-z0-9]*$")


def _setting_items(text: str) -> list[str]:
    """``a=1,levels=0,1`` -> ``['a=1', 'levels=0,1']``: a piece without ``=`` continues the value before it (a
    setting whose value is itself a comma list, as nnUNet_IAC_levels)."""
    items = []
    for piece in (p for p in text.split(",") if p.strip()):
        if "=" not in piece and items:
            items[-1] += "," + piece
        else:
            items.append(piece)
    return items


def _variant(text: str) -> IACVariant:
    name, sep, settings = text.partition(":")
    if not sep or not _VARIANT_NAME.match(name) or name == "selected" or not settings.strip():
        raise argparse.ArgumentTypeError(f"--iac-variant {text!r}: give NAME:SETTING=VALUE[,SETTING=VALUE...], NAME in "
                                         f"lower-case letters and digits (not 'selected'), e.g. "
                                         f"adas:cell_optimizer=adas")
    try:
        env = parse_iac_settings(_setting_items(settings))
    except SettingsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return IACVariant(name, tuple(sorted(env.items())))


def subprocess_env(out: Path, device: str = "cpu") -> dict[str, str]:
    """nnU-Net's folders inside --out, our trainer folder (the benchmark's trainers are in its ``benchmarking``
    subfolder), no inherited nnUNet_IAC_* or nnUNet_BENCH_* knobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("nnUNet_IAC_", "nnUNet_BENCH_"))}
    env.update({"nnUNet_raw": str(out / "nnUNet_raw"), "nnUNet_preprocessed": str(out / "nnUNet_preprocessed"),
                "nnUNet_results": str(out / "nnUNet_results"),
                "nnUNet_extTrainer": ext_trainer_value(os.environ.get("nnUNet_extTrainer", ""))})
    if device == "cpu":
        # data augmentation in the training process: on a CPU the workers only compete with the training for
        # the same cores; on a GPU nnU-Net's own worker counts (or the user's variables) stay
        env.update({"nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1"})
    return env


class Benchmark:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).expanduser().resolve()
        self.source = datasets.identify(args.dataset)
        self.regime = REGIMES[args.regime]
        self.budget = self._budget(args, self.source.name, self.regime)
        self.iac_settings = parse_iac_settings(args.iac_setting)
        self.seeds = [FIRST_SEED + i for i in range(args.seeds)]
        self.env = subprocess_env(self.out, args.device)
        self.raw = self.out / "nnUNet_raw" / self.source.name
        self.preprocessed = self.out / "nnUNet_preprocessed" / self.source.name
        self.results = self.out / "nnUNet_results" / self.source.name
        self.predictions = self.out / "predictions"

    @staticmethod
    def _budget(args, dataset_name: str, regime) -> Budget:
        """The dataset's profile, scaled by the regime (plateau: a longer base on a narrower network), then the
        options given on the command line."""
        profile = profile_for(dataset_name, args.smoke)
        budget = profile.with_overrides(base_epochs=profile.base_epochs * regime.base_epochs_factor,
                                        features_divisor=regime.features_divisor).with_overrides(
            features_divisor=args.features_divisor, batch_size=args.batch_size, patch_size=parse_patch(args.patch_size),
            iterations_per_epoch=args.iterations_per_epoch, val_iterations_per_epoch=args.val_iterations_per_epoch,
            base_epochs=args.base_epochs, search_epochs=args.search_epochs, warmup_epochs=args.warmup_epochs,
            retrain_epochs=args.retrain_epochs, holdout=args.holdout)
        budget.check()
        return budget

    def check_regime(self) -> None:
        """One regime per --out: its stages ("base training", ...) would otherwise count as done for another. A
        folder without regime.json was written before regimes existed, in the short one."""
        record = self.out / "regime.json"
        if not self.args.resume:
            return
        if record.is_file():
            earlier = json.loads(record.read_text())["regime"]
        elif (self.out / "stages.json").is_file():
            earlier = "short"
        else:
            return
        if earlier != self.regime.name:
            raise datasets.DatasetError(f"--out {self.out} holds a run of --regime {earlier}; resume it with --regime "
                                        f"{earlier}, or choose a new --out for --regime {self.regime.name}.")

    def check_evolution_trials(self) -> None:
        """--select-evolution names variants of this run that search with nnUNet_IAC_strategy=nsga2."""
        variants = {v.name: v for v in self.variants}
        for name in self.args.select_evolution:
            variant = variants.get(name)
            if variant is None:
                raise datasets.DatasetError(f"--select-evolution {name}: no IAC variant of that name in this run; add "
                                            f"it, e.g. --iac-variant {name}:strategy=nsga2,evolution_levels=on.")
            strategy = {**self.iac_settings, **variant.env}.get("nnUNet_IAC_strategy")
            if strategy != "nsga2":
                raise datasets.DatasetError(f"--select-evolution {name}: the variant searches with strategy "
                                            f"{strategy or DEFAULT_STRATEGY}, which writes no evolution.json; give it "
                                            f"strategy=nsga2.")

    @property
    def evolution_trial_variants(self) -> list[IACVariant]:
        return [v for v in self.variants if v.name in self.args.select_evolution]

    def record_regime(self) -> None:
        record = self.out / "regime.json"
        if not record.is_file():
            record.write_text(json.dumps({"regime": self.regime.name}))

    def check_inputs(self) -> datasets.CaseSet | None:
        if self.args.seeds < 1:
            raise datasets.DatasetError("--seeds must be at least 1.")
        if self.args.select < 0:
            raise datasets.DatasetError("--select must be 0 or more.")
        if self.args.control_seeds is not None and not 1 <= self.args.control_seeds <= self.args.seeds:
            raise datasets.DatasetError(f"--control-seeds must be between 1 and --seeds ({self.args.seeds}); got "
                                        f"{self.args.control_seeds}.")
        self.check_evolution_trials()
        self.check_regime()
        if "nnUNet_IAC_strategy" in self.iac_settings and self.args.strategies:
            raise datasets.DatasetError("--iac-setting strategy=... and --strategies both choose the search strategy; "
                                        "give the strategies with --strategies alone.")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise datasets.DatasetError(f"IAC variants need distinct names; got {', '.join(names)} (--strategies names "
                                        f"its variants after the strategies).")
        if self.args.random_genotypes < 0:
            raise datasets.DatasetError("--random-genotypes must be 0 or more.")
        source_json = json.loads((self.source.folder / "dataset.json").read_text())
        ending = source_json.get("file_ending", ".nii.gz")
        test = datasets.check_test_set(self.args.test_images, self.args.test_labels, ending,
                                       datasets.channel_count(source_json))
        if self.out.exists() and any(self.out.iterdir()) and not self.args.resume:
            raise datasets.DatasetError(f"--out {self.out} is not empty. Choose a new folder, or add --resume to go "
                                        f"on with the run in it.")
        return test

    def prepare(self, runner: StageRunner, given_test: datasets.CaseSet | None) -> datasets.CaseSet:
        if self.source.layout == "decathlon":
            if not runner.done("convert Decathlon dataset"):
                converter_input = datasets.link_decathlon_input(self.source.folder, self.out / "decathlon_input")
                runner.run("convert Decathlon dataset", "nnUNetv2_convert_MSD_dataset", "-i", str(converter_input),
                           "-np", "1")
        else:
            runner.step("link nnU-Net raw dataset", lambda: datasets.link_raw_dataset(self.source.folder, self.raw))
        if given_test is not None:
            return given_test
        held_out = self.out / "test_set"
        runner.step("hold out test cases", lambda: datasets.hold_out_test_set(
            self.raw, self.budget.holdout, self.args.holdout_seed, held_out))
        return datasets.held_out_set(held_out)

    def main(self) -> dict:
        given_test = self.check_inputs()
        self.out.mkdir(parents=True, exist_ok=True)
        self.record_regime()
        started = time.time()
        runner = StageRunner(self.out, self.env, resume=self.args.resume)
        runner.note(f"IAC benchmark of {self.source.folder} ({self.source.layout}) -> {self.out}; budget "
                    f"'{self.budget.profile}'" + (" (SMOKE: a few iterations, numbers mean nothing)"
                                                  if self.args.smoke else ""))
        test = self.prepare(runner, given_test)
        runner.run("plan and preprocess", "nnUNetv2_plan_and_preprocess", "-d", str(self.source.dataset_id), "-c",
                   CONFIGURATION, "-np", "1", "-npfp", "1", env={"nnUNet_n_proc_DA": "1"})
        config = write_bench_plans(self.preprocessed, self.budget.batch_size, self.budget.patch_size,
                                   self.budget.features_divisor)
        arms = ArmRunner(runner, self.source.dataset_id, self.results, self.budget, self.args.device,
                         self.iac_settings, self.regime)

        arms.train_base()
        validation = datasets.link_case_set("validation", self.raw, datasets.validation_cases(self.preprocessed, FOLD),
                                            self.out / "validation_set")
        for seed in self.seeds:
            write_plans_copy(self.preprocessed, seed_plans_name(seed))
            arms.search(seed)
            arms.retrain(seed)
        for variant in self.variants:
            for seed in self.seeds:
                write_plans_copy(self.preprocessed, seed_plans_name(seed, variant.name))
                arms.search(seed, variant)
                arms.retrain(seed, variant)
        for variant in self.evolution_trial_variants:
            for seed in self.seeds:
                arms.select_evolution(seed, variant)
                write_plans_copy(self.preprocessed, seed_plans_name(seed, trials_variant(variant.name)))
                arms.retrain_genotype(f"retrain trial-chosen genotype ({variant.name}, seed {seed})",
                                      evolution_trials_arm(seed, self.regime, variant.name), seed,
                                      self.evolution_search(seed, variant.name) / SELECTED_FILE)
        if self.args.select:
            arms.select(self.seeds[0], self.seeds[1:], self.args.select)
            write_plans_copy(self.preprocessed, selected_plans_name())
            arms.retrain_genotype("retrain selected genotype", selected_arm(self.regime), self.seeds[0],
                                  self.selection_folder() / SELECTED_FILE)
        search_epochs = measures.search_epochs_run(search_arm(self.seeds[0], self.regime).fold(self.results))
        batches = measures.iac_batches(search_epochs, self.budget.retrain_epochs, self.budget.iterations_per_epoch)
        batches["control_epochs"] = arms.control_epochs(batches["batches"])
        for seed in self.control_seeds:
            for arm in self.control_arms(seed):
                arms.train_control(arm, seed, batches["batches"])
        for seed in self.random_seeds:
            write_plans_copy(self.preprocessed, random_plans_name(seed))
            genotype_file = self.draw_random_genotype(runner, seed)
            arms.retrain_genotype(f"retrain random genotype (seed {seed})", random_arm(seed, self.regime), seed,
                                  genotype_file)

        raw_json = json.loads((self.raw / "dataset.json").read_text())
        sets = [validation, test]
        dice = {}
        for arm in self.evaluated_arms():
            arms.predict(arm, sets, raw_json, self.predictions)
            dice[arm.name] = {s.name: arms.evaluate(arm, s, raw_json, self.predictions) for s in sets}
        if needs_base_retime(runner.records(), [f"predict ({arm.name})" for arm in self.evaluated_arms()], runner.sitting):
            arms.predict(base_arm(self.regime), sets, raw_json, self.predictions, retime_stage(runner.sitting))
        cases = self.cases()
        results = self.collect(runner, dice, batches, config, validation, test, given_test is not None, cases)
        results["total_seconds"] = time.time() - started if not self.args.resume else \
            sum(s["seconds"] for s in results["stages"].values())
        write_results(self.out, results)
        title = f"{self.source.name}, {CONFIGURATION}, fold {FOLD}"
        write_dice_figure(self.out / "dice.png", cases, title)
        write_forest_figure(self.out / "forest.png", forest_rows(results["paired"]), title)
        runner.note(f"results: {self.out / 'results.md'} and results.json")
        return results

    @property
    def variants(self) -> list[IACVariant]:
        """IAC variants beside the run's own IAC arm: --strategies' (after the default), then --iac-variant's."""
        return [*self.args.strategies, *self.args.iac_variant]

    @property
    def random_seeds(self) -> list[int]:
        return [FIRST_SEED + i for i in range(self.args.random_genotypes)]

    @property
    def control_seeds(self) -> list[int]:
        """The seeds the controls train with: the first --control-seeds of the run's (the first one always, as the
        main table's control is the first seed's)."""
        return self.seeds[:self.args.control_seeds or len(self.seeds)]

    def control_arms(self, seed: int) -> list:
        return [control_arm(kind, seed, self.seeds[0], self.regime) for kind in self.args.controls]

    def evaluated_arms(self) -> list:
        """Every arm this run was asked for (not the seeds or draws of an earlier, larger run)."""
        controls = [arm for seed in self.control_seeds for arm in self.control_arms(seed)]
        selected = [selected_arm(self.regime)] if self.args.select else []
        variants = [iac_arm(s, self.regime, variant.name) for variant in self.variants for s in self.seeds]
        trials = [evolution_trials_arm(s, self.regime, v.name) for v in self.evolution_trial_variants for s in self.seeds]
        return [base_arm(self.regime), *controls, *(iac_arm(s, self.regime) for s in self.seeds), *variants,
                *trials, *selected, *(random_arm(s, self.regime) for s in self.random_seeds)]

    def copy_base_curve(self, base) -> str | None:
        """nnU-Net's progress.png of the base, as base_progress.png next to the results (None if absent)."""
        source = base.fold(self.results) / "progress.png"
        if not source.is_file():
            return None
        target = self.out / "base_progress.png"
        target.write_bytes(source.read_bytes())
        return target.name

    def evolution_search(self, seed: int, variant: str) -> Path:
        return search_arm(seed, self.regime, variant).fold(self.results)

    def evolution_trials(self, dice: dict, stages: dict) -> dict | None:
        """Per --select-evolution variant: each seed's trials (levels, supernet and trial Dice, cost, the choice),
        the retrained choice's Dice and nnUNetv2_predict time over the base's, beside the evolution's own choice."""
        if not self.evolution_trial_variants:
            return None
        out = {}
        for variant in self.evolution_trial_variants:
            seeds = {}
            for seed in self.seeds:
                record = json.loads((self.evolution_search(seed, variant.name) / SELECTION_FILE).read_text())
                arm = evolution_trials_arm(seed, self.regime, variant.name).name
                seeds[str(seed)] = {
                    "rule": record["rule"], "budget": record["budget"], "selected": record["selected"],
                    "candidates": [{k: c[k] for k in ("rank", "name", "levels", "supernet_dice", "cost",
                                                       "cost_measure", "val_search_dice", "seconds")}
                                   for c in record["candidates"]],
                    "dice": dice[arm], "predict": predict_ratio(stages, f"predict ({arm})"),
                    "evolution_dice": dice[iac_arm(seed, self.regime, variant.name).name],
                    "evolution_predict": predict_ratio(stages,
                                                       f"predict ({iac_arm(seed, self.regime, variant.name).name})")}
            out[iac_group(trials_variant(variant.name))] = {"variant": variant.name, "seeds": seeds}
        return out

    def selection_folder(self) -> Path:
        """Where nnunet-iac select writes its choice: the first seed's search fold."""
        return search_arm(self.seeds[0], self.regime).fold(self.results)

    def selection(self, batches: dict) -> dict | None:
        """The selection's record, with the batches iac_selected consumed in all (measures.selected_batches)."""
        if not self.args.select:
            return None
        record = json.loads((self.selection_folder() / SELECTION_FILE).read_text())
        trial = record["budget"]["epochs"] * record["budget"]["iterations_per_epoch"]
        return {"selected": record["selected"], "distinct_genotypes": record["distinct_genotypes"],
                "budget": record["budget"], "histories": record["histories"],
                "batches": measures.selected_batches(batches, len(self.seeds), len(record["candidates"]), trial),
                "candidates": [{k: c[k] for k in ("rank", "name", "frequency", "val_search_dice", "seconds",
                                                   "genotype")} for c in record["candidates"]]}

    def draw_random_genotype(self, runner: StageRunner, seed: int) -> Path:
        """A genotype of the first search's space, drawn with ``seed``; kept in --out/random_genotypes."""
        path = self.out / "random_genotypes" / f"{random_arm(seed).name}.json"
        template = search_arm(self.seeds[0], self.regime).fold(self.results) / "genotype.json"
        runner.step(f"draw random genotype (seed {seed})",
                    lambda: random_genotype(Genotype.load(template), seed).save(path))
        return path

    def variant_comparison(self, dice: dict, stages: dict, base_iteration: float | None) -> dict:
        """Per IAC arm group, the reference first (issues 16, 17): settings, search wall time, epochs run and mean
        iteration ratio of every seed, the retrained arm's Dice and nnUNetv2_predict time over the base's (issue 18),
        the seeds' genotype agreement, when each search's genotype settled, what a variant's genotype shares with
        the reference's of the same seed, alpha's entropy, the parameter-free share and the cells' stable ranks
        (issue 17), and the search speed-up over the reference."""
        out, reference_genotypes = {}, None
        iterations = self.budget.iterations_per_epoch
        for variant in (REFERENCE, *self.variants):
            seeds = {}
            for seed in self.seeds:
                fold = search_arm(seed, self.regime, variant.name).fold(self.results)
                mean_iteration = measures.mean_seconds_per_iteration(
                    safe_load(fold / "checkpoint_final.pth"), iterations, self.budget.warmup_epochs)
                seeds[str(seed)] = {
                    "search_seconds": stages[search_stage(seed, variant.name)]["seconds"],
                    "search_epochs": measures.search_epochs_run(fold),
                    "mean_iteration_ratio": mean_iteration / base_iteration if mean_iteration and base_iteration
                    else None,
                    "dice": dice[iac_arm(seed, self.regime, variant.name).name],
                    "predict": predict_ratio(stages, f"predict ({iac_arm(seed, self.regime, variant.name).name})"),
                    "genotype": Genotype.load(fold / "genotype.json").to_dict(),
                    "settling": measures.genotype_settling(fold),
                    "dynamics": search_dynamics(fold, iac_arm(seed, self.regime, variant.name).fold(self.results))}
                seeds[str(seed)]["predict_ratio"] = seeds[str(seed)]["predict"]["value"]
            genotypes = [Genotype.from_dict(r["genotype"]) for r in seeds.values()]
            reference_genotypes = reference_genotypes or genotypes
            out[iac_group(variant.name)] = {
                "settings": {**self.iac_settings, **variant.env},
                "seeds": seeds,
                "search_seconds": measures.spread([r["search_seconds"] for r in seeds.values()]),
                "mean_iteration_ratio": measures.spread([r["mean_iteration_ratio"] for r in seeds.values()
                                                         if r["mean_iteration_ratio"] is not None]),
                "dice": {s: measures.spread([r["dice"][s]["mean"] for r in seeds.values()])
                         for s in ("validation", "test")},
                "predict_ratio": measures.spread([r["predict_ratio"] for r in seeds.values()]),
                "predict_same_sitting": all(r["predict"]["same_sitting"] for r in seeds.values()),
                "genotype_agreement": measures.genotype_agreement(genotypes),
                "agreement_with_reference": None if variant is REFERENCE else measures.pairwise_agreement(
                    genotypes, reference_genotypes)}
        reference = out[iac_group()]["search_seconds"]["mean"]
        for record in out.values():
            record["search_speedup"] = reference / record["search_seconds"]["mean"]
        return out

    def cases(self) -> dict:
        """Per-case Dice of every arm this run was asked for (the seeds of this run, not older ones), read once
        from nnU-Net's evaluation files for the paired statistics and the figure."""
        return {arm.name: arm_cases(self.predictions, arm.name) for arm in self.evaluated_arms()}

    def collect(self, runner, dice, batches, config, validation, test, test_given, cases) -> dict:
        first = self.seeds[0]
        # weights-only reads: never run code stored in a checkpoint
        base, iac, search = base_arm(self.regime), iac_arm(first, self.regime), search_arm(first, self.regime)
        base_ckpt = safe_load(base.fold(self.results) / "checkpoint_final.pth")
        search_ckpt = safe_load(search.fold(self.results) / "checkpoint_final.pth")
        # the control's epochs as trained, not as this sitting's budget asks: a --resume with another
        # --retrain-epochs keeps the earlier control, and the report must name the control it compares with
        control = control_arm("restart", first, first, self.regime)
        control_epochs = safe_load(control.fold(self.results) / "checkpoint_final.pth")["current_epoch"]
        iterations = self.budget.iterations_per_epoch
        base_iteration = measures.seconds_per_iteration(base_ckpt, iterations)
        search_iteration = measures.seconds_per_iteration(search_ckpt, iterations, self.budget.warmup_epochs)
        search_iteration_mean = measures.mean_seconds_per_iteration(search_ckpt, iterations, self.budget.warmup_epochs)
        stages = runner.records()
        base_memory = stages["base training"]["peak_memory_bytes"]
        search_memory = stages[f"search (seed {first})"]["peak_memory_bytes"]
        parameters = measures.implanted_parameters(iac.folder(self.results), CONFIGURATION)
        parameters.update(added_fraction=parameters["added_by_cells"] / parameters["base"],
                          target_fraction=TARGETS["added_parameters"],
                          search_supernet_added=measures.supernet_parameters(search_ckpt))
        seeds = {}
        for seed in self.seeds:
            fold = iac_arm(seed, self.regime).fold(self.results)
            own_validation = fold / "validation" / "summary.json"
            names = label_names(json.loads((fold.parent / "dataset.json").read_text()))
            seeds[str(seed)] = {
                "dice": dice[iac_arm(seed).name],
                "retrain_own_validation": read_dice(own_validation, names) if own_validation.is_file() else None,
                "signal": measures.signal_summary(search_arm(seed, self.regime).fold(self.results), fold,
                                                  self.budget.warmup_epochs),
                "genotype": Genotype.load(search_arm(seed, self.regime).fold(self.results) / "genotype.json")
                .to_dict()}
        genotypes = [Genotype.from_dict(s["genotype"]) for s in seeds.values()]
        ratios = {
            "search_iteration": _ratio("search iteration / base training iteration (equal batch)",
                                       search_iteration, base_iteration, TARGETS["search_iteration"],
                                       "median epoch time / iterations, nnU-Net's epoch timestamps"),
            "search_iteration_mean": _ratio("mean search iteration over the whole search / base training iteration",
                                            search_iteration_mean, base_iteration, TARGETS["search_iteration"],
                                            "mean epoch time / iterations over every search epoch after warm-up"),
            "search_memory": _ratio("peak memory search / base training", search_memory, base_memory,
                                    TARGETS["search_memory"], "peak RSS of the stage's process tree"),
            "predict_time": _ratio("nnUNetv2_predict time IAC / base", stages[f"predict ({iac.name})"]
                                   ["seconds"], predict_ratio(stages, f"predict ({iac.name})")["base_seconds"],
                                   TARGETS["predict_time"], f"wall time, same {len(validation.cases) + len(test.cases)} "
                                   f"cases, the base timed in the same sitting where one was"),
        }
        ratios["search_iteration"]["seconds"] = {"search": search_iteration, "base": base_iteration}
        return {
            "benchmark": {"dataset": self.source.name, "source": str(self.source.folder), "layout": self.source.layout,
                          "configuration": CONFIGURATION, "fold": FOLD, "device": self.args.device,
                          "smoke": self.args.smoke, "seeds": self.seeds, "cpu_count": os.cpu_count(),
                          "iac_settings": self.iac_settings, "controls": self.args.controls,
                          "control_seeds": self.control_seeds,
                          "random_genotypes": self.args.random_genotypes, "select": self.args.select,
                          "select_evolution": self.args.select_evolution,
                          "regime": self.regime.name, "checkpoint": self.regime.checkpoint,
                          "epoch_rule": self.regime.epoch_rule(self.budget.retrain_epochs),
                          "statistics": statistics_method(),
                          "date": datetime.datetime.now().isoformat(timespec="seconds")},
            "budget": {**self.budget.to_dict(), "patch_size_used": list(config["patch_size"]),
                       "batch_size": config["batch_size"], "control_epochs": control_epochs,
                       "iac_batches": batches},
            "base_curve": {**plateau_check(base_ckpt["logging"]), "curve": self.copy_base_curve(base)},
            "paper_budget": PAPER,
            "sets": {"validation": {"cases": len(validation.cases), "source": f"fold {FOLD} of nnU-Net's split"},
                     "test": {"cases": len(test.cases), "source": "given (--test-images/--test-labels)" if test_given
                              else f"held out before planning (seed {self.args.holdout_seed})"}},
            "dice": {"base": dice[base.name], "control": dice[control.name], "iac": dice[iac.name]},
            "arms": dice,
            "selection": self.selection(batches),
            "evolution_trials": self.evolution_trials(dice, stages),
            "random_genotypes": {random_arm(s).name: Genotype.load(self.out / "random_genotypes" /
                                                                   f"{random_arm(s).name}.json").to_dict()
                                 for s in self.random_seeds},
            "genotype": seeds[str(first)]["genotype"],
            "iac_seeds": seeds,
            "genotype_agreement": measures.genotype_agreement(genotypes),
            "variants": self.variant_comparison(dice, stages, base_iteration) if self.variants else None,
            "paired": paired_comparisons(cases),
            "iac_dice_spread": {s: measures.spread([r["dice"][s]["mean"] for r in seeds.values()])
                                for s in ("validation", "test")},
            "parameters": parameters,
            "ratios": ratios,
            "stages": stages,
        }


def _ratio(label: str, numerator, denominator, target: float, source: str) -> dict:
    value = numerator / denominator if numerator is not None and denominator else None
    return {"label": label, "value": value, "target": target, "met": value is not None and value <= target,
            "from": source}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--target" or a.startswith("--target=") for a in argv):  # adapting to another dataset (issue 36)
        from nnunet_iac.benchmark.adaptation import main as adaptation
        return adaptation(argv)
    args = build_parser().parse_args(argv)
    return exit_code(lambda: Benchmark(args).main(), (SettingsError,))


def exit_code(run, user_errors: tuple = ()) -> int:
    """Run a benchmark; 2 with the message for a bad input (the user's to fix), 1 where a stage failed."""
    try:
        run()
    except (datasets.DatasetError, BudgetError, PlansError, *user_errors) as e:
        print(f"benchmark: {e}", file=sys.stderr)
        return 2
    except StageError as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
