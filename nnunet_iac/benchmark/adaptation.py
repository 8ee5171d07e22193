"""Adapting a trained nnU-Net to a new site: ``nnunet-iac benchmark SOURCE --target TARGET`` (issue 36).

    nnunet-iac benchmark SOURCE_DIR --target TARGET_DIR --out DIR [--shots 5,10,20,all] [--support-seeds 3]
                         [--base MODEL_FOLDER [--base-fold F]]

SOURCE_DIR and TARGET_DIR are nnU-Net raw folders of one task in two domains (``nnunet-iac domain-split`` makes
them from DSB2018's domains.tsv); the target's labelled test set is its imagesTs/labelsTs (or --test-images /
--test-labels). Done the way nnU-Net's pretraining guide does it: the source is planned and its base trained, the
source's plans are moved to the target (``nnUNetv2_move_plans_between_datasets``) and the target preprocessed with
them, so a source model runs on target data unchanged. With ``--base MODEL_FOLDER`` the user's own trained source
model is the base instead (nothing is trained on the source; nnunet_iac/benchmark/user_base.py).

What it measures first is whether there is anything to adapt: the **zero-shot gap**, the source base on the
target's test cases against a target-only model trained from scratch on the target's whole training pool (and the
base on the source's own validation cases). A gap under ~2 Dice points is too weak a shift to test adaptation on
(issue 36). The support sets (``--shots``, ``--support-seeds``) are drawn and written as nnU-Net folds
(nnunet_iac/benchmark/support_sets.py) for the adaptation arms.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

from nnunet_iac.benchmark import datasets
from nnunet_iac.benchmark.adaptation_arms import (CONTROL_TRAINERS, SOURCE_FORGETTING, SOURCE_VALIDATION,
                                                  TARGET_ONLY, TARGET_TEST)
from nnunet_iac.benchmark.adaptation_report import write_adaptation_report
from nnunet_iac.benchmark.adaptation_support import SEED, SupportRuns
from nnunet_iac.benchmark.arms import Arm, ArmRunner, base_arm
from nnunet_iac.benchmark.budgets import profile_for
from nnunet_iac.benchmark.case_dice import per_case_dice
from nnunet_iac.benchmark.intervals import LEVEL
from nnunet_iac.benchmark.paired_statistics import paired_difference
from nnunet_iac.benchmark.run_benchmark import exit_code, subprocess_env
from nnunet_iac.benchmark.plans import BENCH_PLANS, CONFIGURATION, write_bench_plans
from nnunet_iac.benchmark.stages import StageError, StageRunner
from nnunet_iac.benchmark.support_sets import (ALL, SupportSetError, assign_folds, parse_shots, requested,
                                               write_splits)
from nnunet_iac.benchmark.user_base import (UserBase, check_base_record, link_into_results, load_user_base,
                                            set_arm_batch, write_source_plans)
from nnunet_iac.nnunet.base_differences import resolved_configuration

#: the shift must cost the source base at least this much Dice on the target for adaptation to be testable
GAP_THRESHOLD = 0.02


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnunet-iac benchmark SOURCE_DIR --target", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE_DIR", help="nnU-Net raw folder of the source domain")
    p.add_argument("--target", required=True, metavar="TARGET_DIR",
                   help="nnU-Net raw folder of the target domain (its imagesTs/labelsTs: the target test set)")
    p.add_argument("--out", required=True, help="folder for everything the run writes (must be new unless --resume)")
    p.add_argument("--base", metavar="MODEL_FOLDER",
                   help="your trained source model, an nnU-Net model folder (TRAINER__PLANS__2d), as the base instead "
                        "of one the benchmark trains; read only (its checkpoint's SHA-256 is checked after every "
                        "support set); its fold_F/validation cases are the forgetting cases")
    p.add_argument("--base-fold", type=int, default=0, metavar="F",
                   help="the fold of --base whose checkpoint_final.pth is the base (default 0)")
    p.add_argument("--test-images", help="the target test set's images instead of TARGET_DIR/imagesTs")
    p.add_argument("--test-labels", help="the target test set's labels instead of TARGET_DIR/labelsTs")
    p.add_argument("--shots", default="5,10,20,all", help="target training cases per support set, e.g. 5,10,20,all")
    p.add_argument("--support-seeds", type=int, default=3, help="random support sets per shot count (default 3)")
    p.add_argument("--controls", default=",".join(CONTROL_TRAINERS), type=_controls,
                   help=f"comma-separated controls trained on each support set for IAC's batches: restart (nnU-Net's "
                        f"fine-tuning recipe, every weight), lowlr, decoder, norm (norm affine weights and biases), "
                        f"firststage (first encoder stage); default {','.join(CONTROL_TRAINERS)}")
    p.add_argument("--random-genotypes", type=int, default=2, metavar="N",
                   help="genotypes drawn from each support set's search space and retrained like IAC (default 2)")
    p.add_argument("--forgetting-cases", type=int, default=20, metavar="N",
                   help="source validation cases every adapted model predicts, to measure forgetting (default 20)")
    p.add_argument("--zero-shot-only", action="store_true",
                   help="stop after the zero-shot gap (base and target-only model), before any support set")
    p.add_argument("--report-only", action="store_true",
                   help="write adaptation.md/json and the figures of --out from the support sets finished so far "
                        "(folds/fold_<F>.json) and stop: nothing is trained or predicted (e.g. beside a running run)")
    p.add_argument("--smoke", action="store_true", help="every stage with a few iterations (for the test suite)")
    p.add_argument("--device", default="cpu", help="device for nnU-Net (default cpu)")
    p.add_argument("--resume", action="store_true", help="go on with an interrupted run in --out")
    return p


def _controls(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in CONTROL_TRAINERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"--controls: unknown control(s) {', '.join(unknown)}; choose among "
                                         f"{', '.join(CONTROL_TRAINERS)}.")
    return kinds


class AdaptationBenchmark:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).expanduser().resolve()
        self.source = datasets.identify(args.source)
        self.target = datasets.identify(args.target)
        for role, found in (("SOURCE_DIR", self.source), ("--target", self.target)):
            if found.layout != "nnunet_raw":
                raise datasets.DatasetError(f"{role} {found.folder} is a Decathlon task; convert it with "
                                            f"nnUNetv2_convert_MSD_dataset and pass the nnU-Net raw folder.")
        if self.source.dataset_id == self.target.dataset_id:
            raise datasets.DatasetError(f"Source and target have the same dataset id {self.source.dataset_id}; give "
                                        f"them their own (nnunet-iac domain-split --source-id/--target-id).")
        self.budget = profile_for(self.source.name, args.smoke)
        self.shots = parse_shots(args.shots)
        if args.support_seeds < 1:
            raise SupportSetError("--support-seeds must be at least 1.")
        self.env = subprocess_env(self.out, args.device)
        self.raw = self.out / "nnUNet_raw"
        self.preprocessed = self.out / "nnUNet_preprocessed"
        self.results = self.out / "nnUNet_results"
        self.predictions = self.out / "predictions"
        self.user_base: UserBase | None = None
        if args.base and not args.report_only:  # a report reads what the run recorded, not the base
            self.user_base = load_user_base(args.base, args.base_fold,
                                            json.loads((self.target.folder / "dataset.json").read_text()))

    def check_inputs(self) -> datasets.CaseSet:
        target_json = json.loads((self.target.folder / "dataset.json").read_text())
        ending, channels = target_json["file_ending"], datasets.channel_count(target_json)
        images = self.args.test_images or self.target.folder / "imagesTs"
        labels = self.args.test_labels or self.target.folder / "labelsTs"
        if not Path(labels).is_dir():
            raise datasets.DatasetError(f"The target has no labelled test set: {labels} does not exist. Hold out target "
                                        f"cases into imagesTs/labelsTs (nnunet-iac domain-split does) or pass "
                                        f"--test-images/--test-labels.")
        test = datasets.check_test_set(str(images), str(labels), ending, channels)
        if self.out.exists() and any(self.out.iterdir()) and not self.args.resume:
            raise datasets.DatasetError(f"--out {self.out} is not empty; pass --resume to go on with the run in it, or "
                                        f"choose a new folder.")
        return datasets.CaseSet(TARGET_TEST, test.images, test.labels, test.cases)

    def prepare(self, runner: StageRunner) -> None:
        """Both datasets linked into the run's nnU-Net raw folder; the source planned, the target preprocessed with
        the source's plans."""
        for found in (self.source, self.target):
            runner.step(f"link {found.name}", lambda f=found: datasets.link_raw_dataset(f.folder, self.raw / f.name))
        if self.user_base is not None:
            return self.prepare_with_user_base(runner)
        runner.run("plan and preprocess source", "nnUNetv2_plan_and_preprocess", "-d", str(self.source.dataset_id),
                   "-c", CONFIGURATION, "-np", "1", "-npfp", "1", env={"nnUNet_n_proc_DA": "1"})
        write_bench_plans(self.preprocessed / self.source.name, self.budget.batch_size, self.budget.patch_size,
                          self.budget.features_divisor)
        runner.run("extract target fingerprint", "nnUNetv2_extract_fingerprint", "-d", str(self.target.dataset_id),
                   "-np", "1", env={"nnUNet_n_proc_DA": "1"})
        runner.run("move source plans to target", "nnUNetv2_move_plans_between_datasets", "-s",
                   str(self.source.dataset_id), "-t", str(self.target.dataset_id), "-sp", BENCH_PLANS, "-tp",
                   BENCH_PLANS)
        self.preprocess_target(runner)

    def prepare_with_user_base(self, runner: StageRunner) -> None:
        """The user's base: its plans moved to the target as a trained source's would be, at the arms' batch."""
        base = self.user_base
        runner.step("link the base model folder", lambda: link_into_results(base, self.results / self.source.name))
        moved = write_source_plans(base, self.preprocessed / self.source.name)
        runner.run("extract target fingerprint", "nnUNetv2_extract_fingerprint", "-d", str(self.target.dataset_id),
                   "-np", "1", env={"nnUNet_n_proc_DA": "1"})
        runner.run("move the base's plans to target", "nnUNetv2_move_plans_between_datasets", "-s",
                   str(self.source.dataset_id), "-t", str(self.target.dataset_id), "-sp", moved, "-tp", BENCH_PLANS)
        runner.step("set the arms' batch", lambda: set_arm_batch(
            self.preprocessed / self.target.name / f"{BENCH_PLANS}.json", self.budget.batch_size,
            self.budget.patch_size))
        self.preprocess_target(runner)

    def preprocess_target(self, runner: StageRunner) -> None:
        # nnU-Net copies dataset.json into the preprocessed folder when it plans; a target preprocessed with moved
        # plans was never planned, and nnUNetv2_preprocess reads it from there
        runner.step("copy target dataset.json", lambda: shutil.copyfile(
            self.raw / self.target.name / "dataset.json", self.preprocessed / self.target.name / "dataset.json"))
        runner.run("preprocess target with source plans", "nnUNetv2_preprocess", "-d", str(self.target.dataset_id),
                   "-plans_name", BENCH_PLANS, "-c", CONFIGURATION, "-np", "1", env={"nnUNet_n_proc_DA": "1"})

    def support_folds(self) -> dict:
        """Every requested support set with its fold number; nnU-Net's splits_final.json of the target rewritten."""
        pool = datasets.case_ids(self.raw / self.target.name / "labelsTr",
                                 json.loads((self.target.folder / "dataset.json").read_text())["file_ending"])
        seeds = list(range(self.args.support_seeds))
        folds = assign_folds(self.out, requested(pool, self.shots if ALL in self.shots else [*self.shots, ALL], seeds))
        write_splits(self.preprocessed / self.target.name, self.out)
        return folds

    @staticmethod
    def train_target_only(arms: ArmRunner, fold: int) -> Arm:
        """nnU-Net from scratch on the target's whole training pool, with the base's budget: what the target data
        alone gives, the other end of the zero-shot gap."""
        arm = Arm(f"{TARGET_ONLY}_{ALL}", "nnUNetTrainerBench", BENCH_PLANS, fold)
        arms.train_from_scratch(f"{arm.name} training", arm, SEED)
        return arm

    def report_only(self) -> dict:
        """The report of the support sets finished so far, from the files a run wrote."""
        gap = self.out / "zero_shot.json"
        if not gap.is_file():
            raise datasets.DatasetError(f"--report-only: {gap} does not exist; run the benchmark (at least "
                                        f"--zero-shot-only) into --out {self.out} first.")
        recorded = json.loads(gap.read_text())  # the run's own description, not this command's options
        return write_adaptation_report(self.out, recorded["benchmark"], recorded, self.predictions / "zero_shot")

    def main(self) -> dict:
        if self.args.report_only:
            return self.report_only()
        test = self.check_inputs()
        self.out.mkdir(parents=True, exist_ok=True)
        check_base_record(self.out, self.user_base)
        started = time.time()
        runner = StageRunner(self.out, self.env, resume=self.args.resume)
        runner.note(f"IAC adaptation benchmark: {self.source.name} -> {self.target.name} in {self.out}; budget "
                    f"'{self.budget.profile}'" + (" (SMOKE: numbers mean nothing)" if self.args.smoke else ""))
        self.prepare(runner)
        folds = self.support_folds()
        source_arms = ArmRunner(runner, self.source.dataset_id, self.results / self.source.name, self.budget,
                                self.args.device,
                                base_checkpoint=self.user_base.checkpoint if self.user_base else None)
        target_arms = ArmRunner(runner, self.target.dataset_id, self.results / self.target.name, self.budget,
                                self.args.device)
        if self.user_base is None:
            source_arms.train_base()
        base_hash = record_base_hash(self.out, source_arms.base_checkpoint)
        all_fold = next(fold for support, fold in folds.items() if support.shots == ALL)
        target_only = self.train_target_only(target_arms, all_fold)

        raw_json = json.loads((self.raw / self.target.name / "dataset.json").read_text())
        validation = datasets.link_case_set(SOURCE_VALIDATION, self.raw / self.source.name, self.source_validation(),
                                            self.out / "source_validation_set")
        base = self.user_base.arm() if self.user_base else base_arm()
        zero_shot = self.predictions / "zero_shot"
        source_arms.predict(base, [validation, test], raw_json, zero_shot)
        target_arms.predict(target_only, [test], raw_json, self.predictions / "target")
        evaluated = {
            "base": {s.name: source_arms.evaluate(base, s, raw_json, zero_shot) for s in (validation, test)},
            target_only.name: {TARGET_TEST: target_arms.evaluate(target_only, test, raw_json,
                                                                 self.predictions / "target")}}
        results = {"benchmark": self.describe(),
                   "sets": {SOURCE_VALIDATION: len(validation.cases), TARGET_TEST: len(test.cases)},
                   "support_sets": [{"fold": fold, "shots": s.shots, "seed": s.seed, "cases": list(s.cases)}
                                    for s, fold in folds.items()],
                   "dice": evaluated,
                   "zero_shot_gap": self.zero_shot_gap(zero_shot, self.predictions / "target", target_only.name),
                   "base_checkpoint_sha256": base_hash,
                   "stages": runner.records()}
        results["total_seconds"] = sum(s["seconds"] for s in results["stages"].values()) if self.args.resume \
            else time.time() - started
        write_gap_report(self.out, results)
        runner.note(f"results: {self.out / 'zero_shot.md'} and zero_shot.json")
        if self.args.zero_shot_only:
            return results
        forgetting = datasets.link_case_set(SOURCE_FORGETTING, self.raw / self.source.name,
                                            forgetting_cases(validation.cases, self.args.forgetting_cases),
                                            self.out / "source_forgetting_set")
        support_runs = SupportRuns(self, runner, source_arms.base_checkpoint, raw_json, test, forgetting)
        report = None
        for support, fold in folds.items():
            if support.shots not in self.shots:  # the whole pool's fold exists for the gap's target-only model
                continue
            support_runs.run(support, fold)
            record_base_hash(self.out, source_arms.base_checkpoint)  # raises if the arms changed it
            # after every support set: a run interrupted later still has its report of the sets so far
            report = write_adaptation_report(self.out, self.describe(), results, zero_shot)
        if report is None:  # no support set in --shots: the report still says so
            report = write_adaptation_report(self.out, self.describe(), results, zero_shot)
        runner.note(f"results: {self.out / 'adaptation.md'} and adaptation.json")
        return report

    def source_validation(self) -> list[str]:
        """The source cases the base did not train on: the validation fold of the base."""
        if self.user_base is None:
            return datasets.validation_cases(self.preprocessed / self.source.name, 0)
        ending = json.loads((self.source.folder / "dataset.json").read_text())["file_ending"]
        return self.user_base.validation_cases(datasets.case_ids(self.raw / self.source.name / "labelsTr", ending))

    def describe(self) -> dict:
        base = ({"model_folder": str(self.user_base.folder), "fold": self.user_base.fold,
                 "plans_batch_size": resolved_configuration(self.user_base.plans, CONFIGURATION).get("batch_size")}
                if self.user_base else "trained by the benchmark on SOURCE_DIR (fold 0)")
        return {"source": self.source.name, "base": base, "target": self.target.name, "device": self.args.device,
                "smoke": self.args.smoke, "budget": self.budget.to_dict(), "cpu_count": os.cpu_count(),
                "controls": self.args.controls, "random_genotypes": self.args.random_genotypes,
                "forgetting_cases": self.args.forgetting_cases,
                "date": datetime.datetime.now().isoformat(timespec="seconds")}

    @staticmethod
    def zero_shot_gap(zero_shot: Path, target: Path, target_only: str) -> dict:
        """Target-only minus base on the target test cases, paired per case; base on its own domain beside it."""
        base_target = per_case_dice(zero_shot / "base" / f"{TARGET_TEST}_summary.json")
        base_source = per_case_dice(zero_shot / "base" / f"{SOURCE_VALIDATION}_summary.json")
        alone = per_case_dice(target / target_only / f"{TARGET_TEST}_summary.json")
        gap = paired_difference(alone, base_target)
        mean = sum(base_target.values()) / len(base_target)
        return {"target_only_minus_base": gap, "base_source_validation": sum(base_source.values()) / len(base_source),
                "base_target_test": mean, "target_only_target_test": sum(alone.values()) / len(alone),
                "threshold": GAP_THRESHOLD, "shift_testable": gap["ci95"][0] > 0 and gap["mean"] >= GAP_THRESHOLD}


def forgetting_cases(validation: tuple[str, ...], count: int) -> list[str]:
    """A seeded subset of the source's validation cases that every adapted model predicts (forgetting); all of them
    where ``count`` is 0 or not smaller."""
    cases = sorted(validation)
    if count <= 0 or count >= len(cases):
        return cases
    return sorted(random.Random(0).sample(cases, count))


def record_base_hash(folder: Path, checkpoint: Path) -> str:
    """SHA-256 of the base checkpoint, written at the first call (base_checkpoint.sha256) and returned; a later call
    (after every support set, and when a run resumes) that finds another refuses to go on: the issue's 'base
    bit-identical', and a base retrained between two parts of a run would mix two bases in one report."""
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    record = folder / "base_checkpoint.sha256"
    if not record.is_file():
        record.write_text(digest + "\n")
    elif record.read_text().strip() != digest:
        raise StageError(f"The base checkpoint {checkpoint} is not the one this run started with (SHA-256 "
                         f"{record.read_text().strip()[:16]}..., now {digest[:16]}...): it changed. Restore it, or "
                         f"start a new --out.")
    return digest


def gap_markdown(results: dict) -> str:
    info, gap = results["benchmark"], results["zero_shot_gap"]
    pair = gap["target_only_minus_base"]
    low, high = pair["ci95"]
    user = info["base"] if isinstance(info.get("base"), dict) else None
    verdict = ("the shift is strong enough to test adaptation" if gap["shift_testable"] else
               f"the shift is too weak to test adaptation (gap below {100 * gap['threshold']:.0f} points or its "
               f"interval reaches zero)")
    return "\n".join([
        f"# Zero-shot gap: {info['source']} -> {info['target']}" + (" (SMOKE RUN)" if info["smoke"] else ""), "",
        f"Run on {info['date']}, device {info['device']}, {info['cpu_count']} CPU cores, budget "
        f"'{info['budget']['profile']}' ({info['budget']['base_epochs']} epochs x "
        f"{info['budget']['iterations_per_epoch']} iterations at batch {info['budget']['batch_size']} for the "
        f"{'target-only model' if user else 'base and for the target-only model'}); "
        f"{results['total_seconds'] / 60:.1f} min." + (f" Base: {user['model_folder']}, fold {user['fold']} (yours, "
                                                      f"not trained by the benchmark)." if user else ""), "",
        "| model | data it was trained on | source validation | target test |", "|---|---|---|---|",
        f"| base | source, fold {user['fold'] if user else 0} training cases | "
        f"{100 * gap['base_source_validation']:.2f} | "
        f"{100 * gap['base_target_test']:.2f} |",
        f"| target-only | the target's whole training pool | - | {100 * gap['target_only_target_test']:.2f} |", "",
        f"Mean per-case Dice (points), {results['sets'][SOURCE_VALIDATION]} source validation and "
        f"{results['sets'][TARGET_TEST]} target test cases. Target-only - base on the target test: "
        f"{100 * pair['mean']:+.2f} points, {LEVEL:.0%} interval over cases [{100 * low:+.2f}, {100 * high:+.2f}], "
        f"Wilcoxon p {pair['wilcoxon_p']:.3g}: {verdict}.", ""])


def write_gap_report(folder: Path, results: dict) -> None:
    (folder / "zero_shot.json").write_text(json.dumps(results, indent=2))
    (folder / "zero_shot.md").write_text(gap_markdown(results))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(lambda: AdaptationBenchmark(args).main(), (SupportSetError,))
