"""The optimizers of the cells and of alpha/beta, for both stages, the trainers and the cost benchmark.

Search (paper 4.2.2), with two deviations from the paper, both measured on Hippocampus
(docs/benchmarks.md, "Attempt 1"):

- cell weights get nnU-Net's momentum (0.99, Nesterov) instead of the paper's 0: a residual cell's
  output projection starts at zero, and under nnU-Net's loss momentum-free SGD at lr 0.01 moved it to
  only ~1e-4 in 350 steps, so the cells contributed nothing and alpha had no signal;
- alpha/beta get no weight decay (the paper names none; PC-DARTS uses 1e-3 with alpha near zero): alpha
  starts at ones, so decay adds the same gradient to every op and, under Adam's normalization, drowned
  the real alpha gradients (~1e-6): alpha entropy stayed ln(8) for the whole search.

Retrain (paper: Stage III with Stage I's hyper-parameters, Adam lr 1e-3): ``adam`` is AdamW lr 1e-3 with
nnU-Net's weight decay and poly schedule (nnU-Net's ``nnUNetTrainerAdam1en3``); ``sgd`` is nnU-Net's own
SGD (lr 0.01, Nesterov momentum 0.99). Adam's per-weight step does not depend on the gradient's size,
which matters for cells whose output projection starts at zero on a converged base: there every
gradient is tiny, and SGD moved the projections to only ~3e-3 in 200 steps (docs/benchmarks.md).
"""
from __future__ import annotations

from typing import Iterable

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

CELL_LR = 0.01
CELL_MOMENTUM = 0.99
ARCH_LR = 1e-3
ARCH_BETAS = (0.5, 0.999)
RETRAIN_OPTIMIZERS = ("adam", "sgd")
RETRAIN_ADAM_LR = 1e-3


def cell_optimizer(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(parameters, CELL_LR, momentum=CELL_MOMENTUM, nesterov=True, weight_decay=0.0)


def architecture_optimizer(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, ARCH_LR, betas=ARCH_BETAS, weight_decay=0.0)


def retrain_optimizer(name: str, parameters: Iterable[torch.nn.Parameter], nnunet_lr: float, weight_decay: float,
                      epochs: int, lr: float = 0.0) -> tuple[torch.optim.Optimizer, PolyLRScheduler]:
    """The cells' optimizer of Stage III and nnU-Net's poly schedule over ``epochs``; ``lr`` 0 keeps the
    optimizer's default (Adam 1e-3, SGD nnU-Net's initial lr)."""
    if name == "adam":
        optimizer = torch.optim.AdamW(parameters, lr or RETRAIN_ADAM_LR, weight_decay=weight_decay, amsgrad=True)
    elif name == "sgd":
        optimizer = torch.optim.SGD(parameters, lr or nnunet_lr, weight_decay=weight_decay, momentum=0.99,
                                    nesterov=True)
    else:
        raise ValueError(f"Unknown retrain optimizer {name!r}; use one of {', '.join(RETRAIN_OPTIMIZERS)}.")
    return optimizer, PolyLRScheduler(optimizer, optimizer.param_groups[0]["lr"], epochs)
