"""How the benchmark names its arms, and which arms are repeats of one another.

An arm's name is its kind, and ``_seed<N>`` when it is one seed of a repeated arm: ``iac_seed12345``,
``random_seed12346``, ``control_lowlr_seed12346``. IAC searched by another strategy than PC-DARTS
(``--strategies``) is the group ``iac_<strategy>``: ``iac_lth_seed12345``. The first seed of each control keeps the bare name
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
#: the search strategy of the plain ``iac`` arms; the reference the other strategies are compared with
REFERENCE_STRATEGY = "pcdarts"
_SEED = re.compile(r"_seed\d+$")


def seeded(group: str, seed: int) -> str:
    return f"{group}_seed{seed}"


def group_of(arm: str) -> str:
    """``control_lowlr_seed12346`` -> ``control_lowlr``; an unseeded name is its own group."""
    return _SEED.sub("", arm)


def iac_group(strategy: str = REFERENCE_STRATEGY) -> str:
    """``iac`` for PC-DARTS (the name of every run before ``--strategies``), ``iac_<strategy>`` otherwise."""
    return IAC if strategy == REFERENCE_STRATEGY else f"{IAC}_{strategy}"


def strategy_of_group(group: str) -> str | None:
    """The search strategy of an ``iac_<strategy>`` group other than PC-DARTS's; None for any other group."""
    from nnunet_iac.search.strategies import STRATEGIES
    prefix = f"{IAC}_"
    name = group.removeprefix(prefix) if group.startswith(prefix) else None
    return name if name in STRATEGIES and name != REFERENCE_STRATEGY else None


def is_control(group: str) -> bool:
    return group in CONTROLS.values()


def mean_label(group: str) -> str:
    """The name of the per-case mean of a group's seeds in the paired tables."""
    return f"{group}_mean_of_seeds"
