"""nnU-Net-format checkpoints written atomically, with the IAC state under one extra key."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch._dynamo import OptimizedModule

IAC_KEY = "iac"


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside DDP / torch.compile wrappers."""
    network = getattr(network, "module", network)
    return network._orig_mod if isinstance(network, OptimizedModule) else network


def atomic_torch_save(obj, path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
