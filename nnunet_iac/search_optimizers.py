"""The two optimizers of the search (paper 4.2.2), in one place for the trainer and the cost benchmark.

Two deviations from the paper, both measured on Hippocampus (docs/benchmarks.md, "Attempt 1"):

- cell weights get nnU-Net's momentum (0.99, Nesterov) instead of the paper's 0: a residual cell's
  output projection starts at zero, and under nnU-Net's loss momentum-free SGD at lr 0.01 moved it to
  only ~1e-4 in 350 steps, so the cells contributed nothing and alpha had no signal;
- alpha/beta get no weight decay (the paper names none; PC-DARTS uses 1e-3 with alpha near zero): alpha
  starts at ones, so decay adds the same gradient to every op and, under Adam's normalization, drowned
  the real alpha gradients (~1e-6): alpha entropy stayed ln(8) for the whole search.
"""
from __future__ import annotations

from typing import Iterable

import torch

CELL_LR = 0.01
CELL_MOMENTUM = 0.99
ARCH_LR = 1e-3
ARCH_BETAS = (0.5, 0.999)


def cell_optimizer(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(parameters, CELL_LR, momentum=CELL_MOMENTUM, nesterov=True, weight_decay=0.0)


def architecture_optimizer(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, ARCH_LR, betas=ARCH_BETAS, weight_decay=0.0)
