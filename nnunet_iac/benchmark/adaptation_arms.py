"""The arms of the adaptation benchmark: per support set, all from the same source base, at equal batches.

Every arm trains on one support set (an nnU-Net fold of the target, nnunet_iac/benchmark/support_sets.py) for as
many training batches as the IAC arm consumed on it (a search iteration is two batches: measures.iac_batches):

- ``iac``: nnUNetTrainerIACSearch then nnUNetTrainerIACRetrain with ``nnUNet_IAC_base`` = the source base; the
  base never changes, the cells are the site's whole adaptation;
- ``random_seed<N>``: a genotype drawn uniformly from the search's space, retrained like IAC;
- ``control`` (nnU-Net's fine-tuning recipe: every weight, poly schedule from 1e-2, as ``-pretrained_weights``
  would, heads kept as the labels are the base's), ``control_lowlr`` (every weight at a constant 1e-3),
  ``control_decoder``, ``control_norm`` (the norms' affine weights and the biases), ``control_firststage`` (the
  first encoder stage);
- ``target_only``: nnU-Net from scratch on the support set alone;
- ``iac_long_retrain``, a diagnostic beside the arms: the searched genotype retrained for the controls' whole
  batches, its search not charged (more batches than any control). Stage III trains the cells afresh, so under
  equal batches the ``iac`` arm's cells see only the retrain's share; this arm measures what that share costs.

The base's zero-shot predictions are made once (nnunet_iac/benchmark/adaptation.py).
"""
from __future__ import annotations

from nnunet_iac.benchmark.arm_names import ADAPTATION_CONTROLS, CONTROLS, RANDOM, group_of, seed_of, seeded
from nnunet_iac.benchmark.arms import Arm
from nnunet_iac.benchmark.plans import BENCH_PLANS

IAC = "iac"
IAC_LONG_RETRAIN = "iac_long_retrain"
TARGET_ONLY = "target_only"
#: the case sets every arm is evaluated on: the target's test set and source validation cases (all of them for the
#: base's zero-shot run, a seeded subset for every adapted arm's forgetting)
TARGET_TEST, SOURCE_VALIDATION, SOURCE_FORGETTING = "target_test", "source_validation", "source_forgetting"
#: the plans copy of the per-support-set target-only models (nnUNetTrainerBench on the plain plans is the
#: target-only model of the whole pool, trained with the base's budget for the zero-shot gap)
SCRATCH_PLANS = f"{BENCH_PLANS}_scratch"
#: control kind -> (arm name, trainer)
CONTROL_TRAINERS = {
    "restart": (CONTROLS["restart"], "nnUNetTrainerBenchControl"),
    "lowlr": (CONTROLS["lowlr"], "nnUNetTrainerBenchControlLowLR"),
    "decoder": (CONTROLS["decoder"], "nnUNetTrainerBenchControlDecoder"),
    "norm": (ADAPTATION_CONTROLS["norm"], "nnUNetTrainerBenchControlNorm"),
    "firststage": (ADAPTATION_CONTROLS["firststage"], "nnUNetTrainerBenchControlFirstStage"),
}


def fold_plans_name(fold: int) -> str:
    """The plans name of one support set's search and retrain: nnU-Net predicts every fold of a model folder with
    one network, and each support set's search finds its own cells, so each needs its own model folder."""
    return f"{BENCH_PLANS}_fold{fold}"


def random_fold_plans_name(fold: int, seed: int) -> str:
    """One support set's random genotype of ``seed`` (its own cells, so its own model folder)."""
    return f"{fold_plans_name(fold)}_random{seed}"


def long_retrain_plans_name(fold: int) -> str:
    """One support set's searched genotype retrained for the controls' batches (its own cells and folder)."""
    return f"{fold_plans_name(fold)}_longretrain"


def search_arm(fold: int) -> Arm:
    return Arm(f"search_fold{fold}", "nnUNetTrainerIACSearch", fold_plans_name(fold), fold)


def iac_arm(fold: int) -> Arm:
    return Arm(IAC, "nnUNetTrainerIACRetrain", fold_plans_name(fold), fold)


def long_retrain_arm(fold: int) -> Arm:
    return Arm(IAC_LONG_RETRAIN, "nnUNetTrainerIACRetrain", long_retrain_plans_name(fold), fold)


def random_arm(fold: int, seed: int) -> Arm:
    return Arm(seeded(RANDOM, seed), "nnUNetTrainerIACRetrain", random_fold_plans_name(fold, seed), fold)


def control_arm(fold: int, kind: str) -> Arm:
    name, trainer = CONTROL_TRAINERS[kind]
    return Arm(name, trainer, BENCH_PLANS, fold)


def target_only_arm(fold: int) -> Arm:
    return Arm(TARGET_ONLY, "nnUNetTrainerBench", SCRATCH_PLANS, fold)


def adapted_arm(name: str, fold: int) -> Arm | None:
    """The arm of one support set called ``name`` in its record (``iac``, ``random_seed12345``, ``control_norm``,
    ...), to find its model folder again; None for a name that is no trained arm of a support set (the base)."""
    if name == IAC:
        return iac_arm(fold)
    if name == IAC_LONG_RETRAIN:
        return long_retrain_arm(fold)
    if name == TARGET_ONLY:
        return target_only_arm(fold)
    if group_of(name) == RANDOM and (seed := seed_of(name)) is not None:
        return random_arm(fold, seed)
    kinds = {arm_name: kind for kind, (arm_name, _) in CONTROL_TRAINERS.items()}
    return control_arm(fold, kinds[name]) if name in kinds else None
