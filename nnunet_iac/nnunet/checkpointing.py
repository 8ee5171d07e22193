"""nnU-Net-format checkpoints: written atomically with the IAC state under one extra key, read weights-only.

nnU-Net's checkpoints are plain containers (tensors, dicts, lists, strings, a ``torch.device``) plus
numpy scalars in their logging, so they load with ``torch.load(weights_only=True)`` once numpy's
scalar and dtype classes are allowed; nothing in them needs arbitrary unpickling.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch._dynamo import OptimizedModule

from nnunet_iac.common.atomic_io import atomic_destination

IAC_KEY = "iac"
NUMPY_SAFE_GLOBALS = [np._core.multiarray.scalar, np.dtype,
                      *(getattr(np.dtypes, name) for name in np.dtypes.__all__)]


class CheckpointReadError(RuntimeError):
    """A checkpoint file cannot be read as a weights-only nnU-Net checkpoint."""


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside DDP / torch.compile wrappers."""
    network = getattr(network, "module", network)
    return network._orig_mod if isinstance(network, OptimizedModule) else network


def atomic_torch_save(obj, path) -> None:
    with atomic_destination(path) as tmp:
        torch.save(obj, tmp)


def safe_load(path, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` of an nnU-Net checkpoint; never runs code stored in the file."""
    try:
        with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
            return torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointReadError(f"Checkpoint {path} does not exist.") from None
    except Exception as e:
        raise CheckpointReadError(
            f"Cannot read {path} as an nnU-Net checkpoint ({_reason(e)}). The file is truncated, corrupt or "
            f"holds objects other than tensors and plain data; use an intact checkpoint written by "
            f"nnUNetv2_train.") from e


def _reason(error: Exception) -> str:
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


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
