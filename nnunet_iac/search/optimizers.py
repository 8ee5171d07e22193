"""The optimizers of the cells and of alpha/beta, for both stages, the trainers and the cost benchmark.

Search (paper 4.2.2), with two deviations from the paper, both measured on Hippocampus
(docs/benchmarks.md, "Attempt 1"):

- cell weights get nnU-Net's momentum (0.99, Nesterov) instead of the paper's 0: a residual cell's
  output projection starts at zero, and under nnU-Net's loss momentum-free SGD at lr 0.01 moved it to
  only ~1e-4 in 350 steps, so the cells contributed nothing and alpha had no signal;
- alpha/beta get no weight decay (the paper names none; PC-DARTS uses 1e-3 with alpha near zero): alpha
  starts at ones, so decay adds the same gradient to every op and, under Adam's normalization, drowned
  the real alpha gradients (~1e-6): alpha entropy stayed ln(8) for the whole search.

Retrain (paper 4.2.3: "all hyper-parameters are the same as listed in Stage I", i.e. Adam at a constant
learning rate of 1e-3): ``adam_constant`` is exactly that (plain Adam, lr 1e-3, no weight decay, no
schedule). ``adam`` (the default) is *not* the paper's: it is nnU-Net's ``nnUNetTrainerAdam1en3`` recipe,
AdamW (amsgrad) lr 1e-3 with nnU-Net's weight decay and poly schedule. ``sgd`` is nnU-Net's own SGD (lr
0.01, Nesterov momentum 0.99, poly). Adam's per-weight step does not depend on the gradient's size, which
matters for cells whose output projection starts at zero on a converged base: there every gradient is
tiny, and SGD moved the projections to only ~3e-3 in 200 steps (docs/benchmarks.md). The default stays
``adam`` until the measurement of issue 13 (docs/search.md, "Remedies for a silent cell") decides.

With ``nnUNet_IAC_retrain_base`` other than ``frozen`` (``base_policy``), the unfrozen base weights are a
second parameter group at ``base_lr``, by default ``RETRAIN_BASE_LR_FACTOR`` (1/10) of the cells' learning
rate: the base is converged and the cells start from scratch, so the base should move less than the cells
(discriminative fine-tuning); the schedule scales both groups alike.
"""
from __future__ import annotations

from typing import Iterable

import torch

from nnunet_iac.search.schedules import ConstantLRScheduler, EpochLRScheduler, PolyGroupsLRScheduler

CELL_LR = 0.01
CELL_MOMENTUM = 0.99
ARCH_LR = 1e-3
ARCH_BETAS = (0.5, 0.999)
RETRAIN_OPTIMIZERS = ("adam", "sgd", "adam_constant", "adas")
#: the search's cell-weight optimizer: SGD with a cosine schedule, or Adas (nnunet_iac/search/adas.py)
CELL_OPTIMIZERS = ("sgd", "adas")
RETRAIN_ADAM_LR = 1e-3
RETRAIN_BASE_LR_FACTOR = 0.1


def cell_optimizer(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(parameters, CELL_LR, momentum=CELL_MOMENTUM, nesterov=True, weight_decay=0.0)


def architecture_optimizer(parameters: Iterable[torch.nn.Parameter], lr: float = 0.0) -> torch.optim.Adam:
    """Adam for alpha/beta; ``lr`` 0 keeps ``ARCH_LR`` (``nnUNet_IAC_arch_lr``)."""
    return torch.optim.Adam(parameters, lr or ARCH_LR, betas=ARCH_BETAS, weight_decay=0.0)


def retrain_optimizer(name: str, parameters: Iterable[torch.nn.Parameter], nnunet_lr: float, weight_decay: float,
                      epochs: int, lr: float = 0.0, base_parameters: Iterable[torch.nn.Parameter] = (),
                      base_lr: float = 0.0) -> tuple[torch.optim.Optimizer, EpochLRScheduler]:
    """The Stage III optimizer and its schedule over ``epochs``: the cells (``parameters``) in group 0 at ``lr``
    (0 keeps the optimizer's default: Adam 1e-3, SGD nnU-Net's initial lr), and ``base_parameters``, if any,
    in group 1 at ``base_lr`` (0: ``RETRAIN_BASE_LR_FACTOR`` x the cells' lr)."""
    if name not in RETRAIN_OPTIMIZERS or name == "adas":  # adas needs the network: nnunet_iac.search.adas
        raise ValueError(f"Unknown retrain optimizer {name!r}; use one of {', '.join(RETRAIN_OPTIMIZERS)}.")
    cell_lr = lr or (nnunet_lr if name == "sgd" else RETRAIN_ADAM_LR)
    groups = [{"params": list(parameters), "lr": cell_lr}]
    base_parameters = list(base_parameters)
    if base_parameters:
        groups.append({"params": base_parameters, "lr": base_lr or RETRAIN_BASE_LR_FACTOR * cell_lr})
    if name == "adam_constant":
        optimizer = torch.optim.Adam(groups, cell_lr)
        return optimizer, ConstantLRScheduler(optimizer, epochs)
    if name == "adam":
        optimizer = torch.optim.AdamW(groups, cell_lr, weight_decay=weight_decay, amsgrad=True)
    else:
        optimizer = torch.optim.SGD(groups, cell_lr, weight_decay=weight_decay, momentum=0.99, nesterov=True)
    return optimizer, PolyGroupsLRScheduler(optimizer, epochs)
