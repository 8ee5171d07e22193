"""Seeding per epoch, so that a search continued with ``--c`` repeats the uninterrupted one exactly.

nnU-Net's checkpoints keep weights and optimizers but no random-number state. Re-seeding every global
generator at the start of each epoch from (seed, epoch) makes epoch k draw the same batches and
augmentations whether or not the run was interrupted before it. This holds for single-process data
loading (``nnUNet_n_proc_DA=0``); nnU-Net's background workers seed themselves.

Under DDP every rank draws its own batches (nnU-Net samples cases at random on each rank; equal seeds would
give every rank the same batches): rank r > 0 adds r to the seed sequence, rank 0 keeps the single-process
seeds.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    entropy = [seed, epoch] + ([rank] if rank else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    value = epoch_seed(seed, epoch, rank)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
