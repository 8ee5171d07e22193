"""What the ranks of a multi-process (DDP, ``-num_gpus N``) run must agree on, in a few collectives.

nnU-Net's DDP wrapper averages the gradients of the parameters its optimizer steps (the cells'); everything
else a search decides from must be made equal across ranks by hand: the architecture's gradients (averaged
like DDP averages the cells', so that every rank takes the same Adam step and the result is the single-process
step on the global batch), decisions taken from per-rank losses (stop on a NaN), and what one rank measures for
all of them. In one process (no process group) every function here is a no-op, so callers need no branches.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Every rank's ``.grad`` becomes the mean over ranks (one all-reduce of one flat buffer).

    A parameter without a gradient on some rank counts as zero there; one without a gradient on every rank
    keeps ``None`` (the optimizer then skips it, as in one process). Called on scaled gradients (before a
    GradScaler's ``unscale_``), an inf or NaN on one rank reaches every rank, so every rank's scaler skips the
    same step and backs off alike: the scalers stay equal, as DDP keeps nnU-Net's own scaler equal.
    """
    if not is_distributed():
        return
    parameters = list(parameters)
    if not parameters:
        return
    device = parameters[0].device
    present = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32, device=device)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float()
                      for p in parameters] + [present])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for index, p in enumerate(parameters):
        count = p.numel()
        if flat[-len(parameters) + index] > 0:
            p.grad = flat[offset:offset + count].view_as(p).to(p.dtype).clone()
        offset += count


def average_value(value: float) -> float:
    """The mean of a number over ranks (a NaN or inf on one rank reaches all of them)."""
    if not is_distributed():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    total = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / dist.get_world_size()


def broadcast_tensors(tensors: Iterable[torch.Tensor], source: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``source``'s values."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, source)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextmanager
def rank_zero_first() -> Iterator[None]:
    """Run the block on rank 0, then on the other ranks: what rank 0 writes for everyone (a split, a measured
    cost table cached in the fold folder) the others then read instead of writing it too."""
    if rank() != 0:
        barrier()
    yield
    if rank() == 0:
        barrier()
