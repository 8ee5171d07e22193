"""How the benchmark names its arms, and which arms are repeats of one another.

An arm's name is its kind, and ``_seed<N>`` when it is one seed of a repeated arm: ``iac_seed12345``,
``random_seed12346``, ``control_lowlr_seed12346``. An IAC variant (other settings for search and retrain from
the same base: ``--iac-variant``, ``--strategies``) is the group ``iac_<variant>``: ``iac_lth_seed12345``. The first seed of each control keeps the bare name
(``control``, ``control_lowlr``), as in runs made before controls had seeds, so those folders resume. The
statistics compare groups (an arm's seeds together), the report lists arms.
"""
from __future__ import annotations

import re

BASE = "base"
IAC = "iac"
#: the genotype nnunet-iac select chose among the searches' most frequent ones, retrained (``--select N``)
SELECTED = "iac_selected"
RANDOM = "random"
#: control kind (``--controls``) -> arm name: all weights at nnU-Net's restarted schedule, all weights at a low
#: constant rate, the decoder alone (trainers/benchmarking/nnUNetTrainerBench.py)
CONTROLS = {"restart": "control", "lowlr": "control_lowlr", "decoder": "control_decoder"}
#: the parameter-efficient controls of the adaptation benchmark (issue 36): the norms' affine weights and the
#: biases, the first encoder stage
ADAPTATION_CONTROLS = {"norm": "control_norm", "firststage": "control_firststage"}
_SEED = re.compile(r"_seed(\d+)$")


def seeded(group: str, seed: int) -> str:
    return f"{group}_seed{seed}"


def seed_of(arm: str) -> int | None:
    """``random_seed12346`` -> 12346 (the inverse of ``seeded``); None for an unseeded name."""
    match = _SEED.search(arm)
    return int(match.group(1)) if match else None


def group_of(arm: str) -> str:
    """``control_lowlr_seed12346`` -> ``control_lowlr``; an unseeded name is its own group."""
    return _SEED.sub("", arm)


def iac_group(variant: str = "") -> str:
    """``iac`` for the run's own IAC arm (the reference), ``iac_<variant>`` for a variant."""
    return f"{IAC}_{variant}" if variant else IAC


def trials_variant(variant: str) -> str:
    """The variant name of the genotype Stage-III trials chose among variant's evolution (``--select-evolution``)."""
    return f"{variant}_trials"


def is_iac_variant(group: str) -> bool:
    """An ``iac_<variant>`` group (not the reference ``iac``, not the selected genotype's arm)."""
    return group.startswith(f"{IAC}_") and group != SELECTED


def is_control(group: str) -> bool:
    return group in CONTROLS.values() or group in ADAPTATION_CONTROLS.values()


def mean_label(group: str) -> str:
    """The name of the per-case mean of a group's seeds in the paired tables."""
    return f"{group}_mean_of_seeds"
