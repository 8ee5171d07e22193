"""nnU-Net-format checkpoints written atomically, with the IAC state under one extra key."""
from __future__ import annotations

import torch
from torch._dynamo import OptimizedModule

from nnunet_iac.atomic_io import atomic_destination

IAC_KEY = "iac"


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside DDP / torch.compile wrappers."""
    network = getattr(network, "module", network)
    return network._orig_mod if isinstance(network, OptimizedModule) else network


def atomic_torch_save(obj, path) -> None:
    with atomic_destination(path) as tmp:
        torch.save(obj, tmp)


def nnunet_checkpoint(trainer, iac_state: dict) -> dict:
    """The dict nnUNetTrainer.save_checkpoint writes, plus ``iac_state`` under ``IAC_KEY``."""
    return {
        "network_weights": unwrap(trainer.network).state_dict(),
        "optimizer_state": trainer.optimizer.state_dict(),
        "grad_scaler_state": trainer.grad_scaler.state_dict() if trainer.grad_scaler is not None else None,
        "logging": trainer.logger.get_checkpoint(),
        "_best_ema": trainer._best_ema,
        "current_epoch": trainer.current_epoch + 1,
        "init_args": trainer.my_init_kwargs,
        "trainer_name": trainer.__class__.__name__,
        "inference_allowed_mirroring_axes": trainer.inference_allowed_mirroring_axes,
        IAC_KEY: iac_state,
    }
