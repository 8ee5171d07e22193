"""Every arm of one support set, trained, predicted and evaluated; its per-case Dice kept in ``folds/fold_<f>.json``.

One support set is the unit a session can finish and a lost machine must not lose: its stages are named with its
fold (stages.json resumes them), and as soon as its arms are evaluated their per-case Dice on the target test set
and on the forgetting cases of the source go to a small JSON file beside the run, to be committed (issue 36).
"""
from __future__ import annotations

import json
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.nnunet.model_folder import model_folder_network
from nnunet_iac.network.trainable_parts import ALL, DECODER, FIRST_STAGE, NORM, part_parameter_names
from nnunet_iac.search.history import HISTORY_FILE
from nnunet_iac.search.random_genotype import random_genotype
from nnunet_iac.search.split import SPLIT_FILE

from nnunet_iac.benchmark import measures
from nnunet_iac.benchmark.adaptation_arms import (SCRATCH_PLANS, control_arm, fold_plans_name, iac_arm,
                                                  long_retrain_arm, long_retrain_plans_name, random_arm,
                                                  random_fold_plans_name, search_arm, target_only_arm)
from nnunet_iac.benchmark.arms import Arm, ArmRunner
from nnunet_iac.benchmark.case_dice import evaluation_summary, per_case_dice
from nnunet_iac.benchmark.datasets import CaseSet
from nnunet_iac.benchmark.plans import CONFIGURATION, write_plans_copy
from nnunet_iac.benchmark.stages import ScopedStages, StageRunner
from nnunet_iac.benchmark.support_sets import SupportSet

#: the training seed of every arm; the support seed varies the data
SEED = 12345
FOLDS_FOLDER = "folds"
#: control kind -> the part of the base it trains (trainers/benchmarking/nnUNetTrainerBench.py)
CONTROL_PARTS = {"restart": ALL, "lowlr": ALL, "decoder": DECODER, "norm": NORM, "firststage": FIRST_STAGE}


def fold_record_path(out: Path, fold: int) -> Path:
    return Path(out) / FOLDS_FOLDER / f"fold_{fold}.json"


def search_signal(search_fold: Path) -> dict:
    """How the search split the support set and whether its few val_search cases still steered alpha/beta: the
    split's sizes and, per epoch, the gradient signal-to-noise ratios (~1: noise only) and the losses."""
    split = json.loads((search_fold / SPLIT_FILE).read_text())
    keep = ("epoch", "phase", "snr_alpha", "snr_beta", "arch_loss", "val_loss")
    history = json.loads((search_fold / HISTORY_FILE).read_text())
    return {"train_search": len(split["train_search"]), "val_search": len(split["val_search"]),
            "epochs": [{k: row.get(k) for k in keep} for row in history]}


class SupportRuns:
    def __init__(self, benchmark, runner: StageRunner, base_checkpoint: Path, raw_json: dict, test: CaseSet,
                 forgetting: CaseSet):
        self.benchmark, self.runner, self.base_checkpoint = benchmark, runner, Path(base_checkpoint)
        self.raw_json, self.test, self.forgetting = raw_json, test, forgetting
        self.results = benchmark.results / benchmark.target.name
        self.preprocessed = benchmark.preprocessed / benchmark.target.name
        self.random_seeds = [SEED + i for i in range(benchmark.args.random_genotypes)]

    def arms(self, fold: int) -> ArmRunner:
        b = self.benchmark
        return ArmRunner(ScopedStages(self.runner, f" (fold {fold})"), b.target.dataset_id, self.results, b.budget,
                         b.args.device, base_checkpoint=self.base_checkpoint)

    def run(self, support: SupportSet, fold: int) -> dict:
        """Train every arm on the support set, predict and evaluate them, write the fold's record."""
        self.runner.note(f"support set: {support.label} (fold {fold}, {len(support.cases)} cases)")
        arms = self.arms(fold)
        plans = (SCRATCH_PLANS, fold_plans_name(fold), long_retrain_plans_name(fold),
                 *(random_fold_plans_name(fold, s) for s in self.random_seeds))
        for name in plans:
            write_plans_copy(self.preprocessed, name)
        search, iac = search_arm(fold), iac_arm(fold)
        arms.search_as("search", search, SEED)
        arms.retrain_as("retrain", iac, SEED)
        budget, searched = self.benchmark.budget, search.fold(self.results)
        search_epochs = measures.search_epochs_run(searched)
        batches = measures.iac_batches(search_epochs, budget.retrain_epochs, budget.iterations_per_epoch)
        trained: list[Arm] = [iac]
        for kind in self.benchmark.args.controls:
            arm = control_arm(fold, kind)
            arms.train_control(arm, SEED, batches["batches"])
            trained.append(arm)
        for seed in self.random_seeds:
            arm = random_arm(fold, seed)
            genotype = self.draw_genotype(search, fold, seed)
            arms.retrain_genotype(f"retrain random genotype (seed {seed})", arm, SEED, genotype)
            trained.append(arm)
        scratch = target_only_arm(fold)
        control_epochs = arms.control_epochs(batches["batches"])
        arms.train_from_scratch("target_only training", scratch, SEED, epochs=control_epochs)
        trained.append(scratch)
        long_retrain = long_retrain_arm(fold)
        arms.retrain_genotype("retrain searched genotype for the controls' batches", long_retrain, SEED,
                              searched / "genotype.json", epochs=control_epochs)
        trained.append(long_retrain)
        folder = self.benchmark.predictions / f"fold_{fold}"
        dice = {}
        for arm in trained:
            arms.predict(arm, [self.test, self.forgetting], self.raw_json, folder)
            for case_set in (self.test, self.forgetting):
                arms.evaluate(arm, case_set, self.raw_json, folder)
            dice[arm.name] = {s.name: per_case_dice(evaluation_summary(folder, arm.name, s.name))
                              for s in (self.test, self.forgetting)}
        record = {"fold": fold, "shots": support.shots, "support_seed": support.seed, "cases": list(support.cases),
                  "batches": {**batches, "iac_long_retrain": measures.iac_batches(
                      search_epochs, control_epochs, budget.iterations_per_epoch)["batches"]},
                  "control_epochs": control_epochs, "dice": dice,
                  "parameters": self.parameters(trained),
                  "genotype": Genotype.load(searched / "genotype.json").to_dict(),
                  "search_signal": search_signal(searched),
                  "stages": {name: r for name, r in self.runner.records().items() if name.endswith(f" (fold {fold})")}}
        path = fold_record_path(self.benchmark.out, fold)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
        return record

    def draw_genotype(self, search: Arm, fold: int, seed: int) -> Path:
        """A genotype of the fold's search space drawn with ``seed``, kept in --out/random_genotypes."""
        path = self.benchmark.out / "random_genotypes" / f"fold_{fold}_random_seed{seed}.json"
        if not path.is_file():
            random_genotype(Genotype.load(search.fold(self.results) / "genotype.json"), seed).save(path)
        return path

    def parameters(self, trained: list[Arm]) -> dict:
        """Per arm, the parameters it trained and the ones a site must store beside the shared base: the cells for
        IAC and random genotypes, the trained part for a control, the whole network from scratch."""
        base = model_folder_network(self.base_checkpoint.parent.parent, CONFIGURATION)
        total = sum(p.numel() for p in base.parameters())
        counts = {}
        for arm in trained:
            if arm.trainer == "nnUNetTrainerIACRetrain":
                added = measures.implanted_parameters(arm.folder(self.results), CONFIGURATION)["added_by_cells"]
                counts[arm.name] = {"trained": added, "stored": added, "base": total}
                continue
            kind = next((k for k in CONTROL_PARTS if control_arm(arm.fold_index, k) == arm), None)
            names = part_parameter_names(base, CONTROL_PARTS[kind] if kind else ALL)
            part = sum(p.numel() for n, p in base.named_parameters() if n in names)
            counts[arm.name] = {"trained": part, "stored": part, "base": total}
        return counts
