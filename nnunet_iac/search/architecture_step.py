"""One architecture update (alpha/beta on a val_search batch) and the gradient bookkeeping around it.

Mixed precision as nnU-Net's ``train_step``: fp16 autocast on CUDA only, the loss scaled by a
GradScaler, gradients unscaled before anyone reads them, steps with inf/NaN gradients skipped by the
scaler (this step clips nothing; a clipping added later belongs after ``unscale_``). Without the
scaler, alpha/beta gradients (~1e-8 while a residual cell's projection is small) flush to zero in fp16
and the search does nothing on a GPU. The architecture step has a GradScaler of
its own: a scaler's scale and skip decision follow the gradients of the optimizer it steps, and the
cell weights' gradients overflow and underflow at other scales than alpha/beta's.

Under DDP (``-num_gpus N``) the step runs on every rank on that rank's val_search batch, and the gradients
are averaged over the ranks (``common.distributed.average_gradients``) right after the backward pass, still
scaled, as DDP does for the cell weights; then every rank unscales, checks, steps and updates alike. Why an
all-reduce of the gradients and not one rank stepping and broadcasting alpha/beta: every rank's batch counts
(the step is the single-process step on the global batch, as for the cells), and Adam's moments and the
scaler's state stay equal on every rank without being sent, so a checkpoint of rank 0 resumes every rank.
Averaging the scaled gradients also makes the scaler's skip decision the same on every rank: an overflow on
one rank is an inf on all of them.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from nnunetv2.utilities.helpers import dummy_context

from nnunet_iac.common.distributed import average_gradients


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


def to_device(x, device):
    if isinstance(x, list):
        return [i.to(device, non_blocking=True) for i in x]
    return x.to(device, non_blocking=True)


def mixed_precision(device: torch.device):
    """nnU-Net's rule: autocast (fp16) on CUDA only; CPU autocast is slow and MPS does not support it."""
    return torch.autocast(device.type, enabled=True) if device.type == "cuda" else dummy_context()


def architecture_grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """The alpha/beta step's own GradScaler on CUDA (as nnU-Net makes one for its step), else None."""
    return torch.amp.GradScaler("cuda") if device.type == "cuda" else None


def stepped_parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def architecture_step(network, loss_fn, batch: dict, optimizer: torch.optim.Optimizer, device: torch.device,
                      grad_scaler: torch.amp.GradScaler | None = None,
                      on_gradients: Callable[[], None] = lambda: None) -> float:
    """Forward a val_search batch and update alpha and beta (paper Algorithm 1, lines 6-7).

    ``on_gradients`` is called after the backward pass with the true (unscaled) gradients in ``.grad``,
    before the step, also for a step the scaler then skips (its gradients are not all finite). Under DDP
    ``network`` is the plain module, not nnU-Net's DDP wrapper (DDP would wait for gradients of every cell
    weight, and this step computes none); the gradients it sees are already the mean over ranks.
    """
    data, target = to_device(batch["data"], device), to_device(batch["target"], device)
    optimizer.zero_grad(set_to_none=True)
    with mixed_precision(device):
        loss = loss_fn(network(data), target)
    if grad_scaler is not None:
        grad_scaler.scale(loss).backward()
        average_gradients(stepped_parameters(optimizer))
        grad_scaler.unscale_(optimizer)
        on_gradients()
        grad_scaler.step(optimizer)
        grad_scaler.update()
    else:
        loss.backward()
        average_gradients(stepped_parameters(optimizer))
        on_gradients()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().item()
