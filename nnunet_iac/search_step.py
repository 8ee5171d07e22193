"""One architecture update (alpha/beta on a val_search batch) and the gradient bookkeeping around it."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from nnunetv2.utilities.helpers import dummy_context


@contextmanager
def gradients_only_for(trainable, frozen):
    """Let only ``trainable`` collect gradients; the encoder and ``frozen`` need no weight gradients."""
    previous = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p, flag in zip(frozen, previous):
            p.requires_grad_(flag)


def _to_device(x, device):
    if isinstance(x, list):
        return [i.to(device, non_blocking=True) for i in x]
    return x.to(device, non_blocking=True)


def architecture_step(network, loss_fn, batch: dict, optimizer: torch.optim.Optimizer, device: torch.device,
                      grad_scaler=None) -> float:
    """Forward a val_search batch and update alpha and beta (paper Algorithm 1, lines 6-7)."""
    data, target = _to_device(batch["data"], device), _to_device(batch["target"], device)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, enabled=True) if device.type == "cuda" else dummy_context():
        loss = loss_fn(network(data), target)
    if grad_scaler is not None:
        grad_scaler.scale(loss).backward()
        grad_scaler.step(optimizer)
        grad_scaler.update()
    else:
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().item()
