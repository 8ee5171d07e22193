"""The benchmark's plans: a copy of nnU-Net's plans with the 2d batch (and optionally patch) size cut.

All arms train with ``-p`` of this copy, so batch and patch size are equal by construction. The copy
keeps the 2d ``data_identifier``, so it reads the data nnU-Net preprocessed for the original plans.
Extra search seeds (and random genotypes) get their own identical copies under other names: nnU-Net names model folders
``trainer__plans__configuration``, so a plans name per seed keeps each seed's search and retrain apart
(and lets the retrain find its own seed's genotype and nnUNetv2_predict its own model).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

CONFIGURATION = "2d"
SOURCE_PLANS = "nnUNetPlans"
BENCH_PLANS = "nnUNetPlans_bench"


class PlansError(ValueError):
    """The requested batch or patch size does not fit the planned network."""


def seed_plans_name(seed: int, variant: str = "") -> str:
    """One seed's search and retrain (of an IAC variant: its own name too)."""
    return f"{BENCH_PLANS}_{variant}_seed{seed}" if variant else f"{BENCH_PLANS}_seed{seed}"


def selected_plans_name() -> str:
    """The plans name of the retrain of the genotype ``nnunet-iac select`` chose."""
    return f"{BENCH_PLANS}_selected"


def random_plans_name(seed: int) -> str:
    """The plans name of a random genotype's retrain (its own model folder)."""
    return f"{BENCH_PLANS}_random{seed}"


def _total_strides(configuration: dict) -> list[int]:
    strides = configuration["architecture"]["arch_kwargs"]["strides"]
    return [math.prod(s[d] if isinstance(s, (list, tuple)) else s for s in strides)
            for d in range(len(configuration["patch_size"]))]


def write_bench_plans(preprocessed_dataset: Path, batch_size: int, patch_size: tuple[int, ...] | None,
                      features_divisor: int = 1) -> dict:
    """Write ``nnUNetPlans_bench.json`` next to nnU-Net's plans; returns the 2d configuration used. With
    ``features_divisor`` > 1 every stage of the network has that many times fewer features (at least 1)."""
    plans = json.loads((preprocessed_dataset / f"{SOURCE_PLANS}.json").read_text())
    configuration = plans["configurations"][CONFIGURATION]
    if features_divisor > 1:
        arch = configuration["architecture"]["arch_kwargs"]
        arch["features_per_stage"] = [max(1, f // features_divisor) for f in arch["features_per_stage"]]
    if patch_size is not None:
        strides = _total_strides(configuration)
        if len(patch_size) != len(strides) or any(p % s for p, s in zip(patch_size, strides)):
            raise PlansError(f"Patch size {'x'.join(map(str, patch_size))} does not fit the planned {CONFIGURATION} "
                             f"network: each side must be a multiple of its total stride "
                             f"{'x'.join(map(str, strides))}.")
        configuration["patch_size"] = list(patch_size)
    configuration["batch_size"] = batch_size
    plans["plans_name"] = BENCH_PLANS
    plans["configurations"] = {CONFIGURATION: configuration}
    (preprocessed_dataset / f"{BENCH_PLANS}.json").write_text(json.dumps(plans, indent=2))
    return configuration


def write_plans_copy(preprocessed_dataset: Path, name: str) -> None:
    """An identical copy of the benchmark plans under another name (one per search seed)."""
    plans = json.loads((preprocessed_dataset / f"{BENCH_PLANS}.json").read_text())
    plans["plans_name"] = name
    (preprocessed_dataset / f"{name}.json").write_text(json.dumps(plans, indent=2))
