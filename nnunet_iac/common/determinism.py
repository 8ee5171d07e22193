"""Seeding per epoch, so that a search continued with ``--c`` repeats the uninterrupted one exactly.

nnU-Net's checkpoints keep weights and optimizers but no random-number state. Re-seeding every global
generator at the start of each epoch from (seed, epoch) makes epoch k draw the same batches and
augmentations whether or not the run was interrupted before it. This holds for single-process data
loading (``nnUNet_n_proc_DA=0``); nnU-Net's background workers seed themselves.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def seed_epoch(seed: int, epoch: int) -> None:
    value = epoch_seed(seed, epoch)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
