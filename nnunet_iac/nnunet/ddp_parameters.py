"""Which parameters nnU-Net's DDP wrapper synchronises: exactly those the trainer's optimizer steps.

nnU-Net wraps the network as ``DDP(network, device_ids=[rank])`` right after ``configure_optimizers``,
without ``find_unused_parameters``: DDP then waits, after every backward pass through it, for a gradient of
every parameter it registered. An IAC network holds parameters that get none there: the frozen base, and in
the search alpha/beta (the cell step computes no gradient for them; their own step goes past DDP and
averages their gradients itself, ``search.architecture_step``). Left registered, the second iteration
fails ("Expected to have finished reduction in the prior iteration"). Telling DDP to leave out every
parameter that the optimizer does not step (the frozen base, alpha/beta; not a base part that
``nnUNet_IAC_retrain_base`` trains) keeps nnU-Net's own wrapping and its checks.

``_set_params_and_buffers_to_ignore_for_model`` is DDP's hook for this (underscored, but stable since
PyTorch 1.8 and what other training frameworks use); freezing with ``requires_grad`` before the wrap would
do the same for the base, not for alpha/beta, which do need gradients.
"""
from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from nnunet_iac.search.architecture_step import stepped_parameters


def leave_out_of_ddp(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Mark every parameter of ``network`` (the plain module DDP will wrap) that ``optimizer`` does not step as
    one DDP ignores; returns their names."""
    stepped = {id(p) for p in stepped_parameters(optimizer)}
    ignored = [name for name, p in network.named_parameters() if id(p) not in stepped]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(network, ignored)
    return ignored
