"""The search's CUDA-only paths for a few iterations, for whoever has a GPU (issue 39); a clean skip without one.

What the CPU tests cannot run, run here on a Hippocampus-sized network (nnU-Net's 3d_fullres plan for MSD
Task04, random weights and data; ``--dim 2`` for its 2d plan):

- fp16 autocast with nnU-Net's GradScaler for the cell step and the architecture step's own GradScaler
  (``search.architecture_step``), through the real PC-DARTS strategy; checked: alpha/beta move and stay finite;
- the search iteration (architecture step + cell step) against nnU-Net's training iteration of the base alone:
  seconds per iteration, their ratio, and the peak GPU memory of each;
- with 2 or more GPUs, NCCL DDP on 2 of them as the search trainer runs it: the network wrapped as nnU-Net wraps
  it, with the frozen base and alpha/beta left out of DDP (``nnunet.ddp_parameters``), the architecture step past
  the wrapper with its gradients averaged, each rank on its own half of the batch; checked: alpha/beta equal
  on both ranks after every run.

channels_last is not checked: the cells use it on the CPU only (``cells.depthwise_conv``). nnU-Net's data
loading, its loss (Dice + CE; CE alone here) and a whole ``nnUNetv2_train -num_gpus 2`` run are not part of it.

    bash scripts/gpu_check.sh [--iterations 20] [--dim 3] [--batch 9] [--network tiny] [--out gpu_check.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nnunet_iac.nnunet.ddp_parameters import leave_out_of_ddp
from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.network.implant import architecture_parameters, cell_parameters, freeze_base
from nnunet_iac.network.reference_networks import hippocampus_2d_unet, hippocampus_3d_unet, tiny_plain_unet
from nnunet_iac.search.architecture_step import gradients_only_for, mixed_precision
from nnunet_iac.search.optimizers import cell_optimizer
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.strategy import StrategyContext

PATCH = {2: (56, 40), 3: (40, 56, 40)}
CLASSES = 3


@dataclass(frozen=True)
class Case:
    """What is run: the network (nnU-Net's Hippocampus plan, or ``tiny``: a quick check of the paths alone), its
    dimensionality, the global batch, the patch (the plan's by default) and the iterations timed."""
    dim: int = 3
    batch: int = 9
    iterations: int = 20
    network: str = "hippocampus"
    patch: tuple[int, ...] | None = None

    def base_network(self) -> nn.Module:
        if self.network == "tiny":
            return tiny_plain_unet(self.dim, deep_supervision=False)
        return (hippocampus_3d_unet if self.dim == 3 else hippocampus_2d_unet)(deep_supervision=False)

    def batches(self, size: int, device: torch.device, count: int, seed: int) -> list[dict]:
        patch = self.patch or PATCH[self.dim]
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return [{"data": torch.randn(size, 1, *patch, generator=generator).to(device),
                 "target": torch.randint(0, CLASSES, (size, *patch), generator=generator).to(device)}
                for _ in range(count)]


def skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target)


def training_step(model: nn.Module, parameters, optimizer, scaler, batch: dict, device: torch.device) -> float:
    """nnU-Net's train_step: fp16 autocast, its GradScaler, gradient clipping at 12."""
    optimizer.zero_grad(set_to_none=True)
    with mixed_precision(device):
        loss = loss_fn(model(batch["data"]), batch["target"])
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(parameters, 12)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


class Search:
    """One search iteration as the trainer runs it: PC-DARTS' architecture step on the plain supernet, then the
    cell step through ``model`` (the supernet or, under DDP, its wrapper as nnU-Net makes it)."""

    def __init__(self, case: Case, device: torch.device, ddp: bool = False):
        torch.manual_seed(0)
        self.network = freeze_base(implant_search_cells(case.base_network())).to(device)
        self.device = device
        self.cells = cell_parameters(self.network)
        self.optimizer = cell_optimizer(self.cells)
        self.scaler = torch.amp.GradScaler(device.type)
        self.strategy = PCDartsStrategy()
        self.strategy.setup(self.network, StrategyContext(device))
        self.model = self.network
        if ddp:
            leave_out_of_ddp(self.network, self.optimizer)
            self.model = DistributedDataParallel(self.network,
                                                 device_ids=[device.index] if device.type == "cuda" else None)

    def iteration(self, train: dict, val: dict) -> tuple[float, float]:
        arch_loss = self.strategy.architecture_update(self.network, loss_fn, lambda: val, lambda: None)
        with gradients_only_for(self.cells, self.strategy.architecture_parameters()):
            loss = training_step(self.model, self.cells, self.optimizer, self.scaler, train, self.device)
        return arch_loss, loss

    def alpha_beta(self) -> list[torch.Tensor]:
        return [p.detach().float().cpu().clone() for p in architecture_parameters(self.network)]


def seconds_per_iteration(step, data: list, device: torch.device) -> tuple[float, int]:
    """Mean seconds of ``step`` over ``data`` after one warm-up call, and the peak memory allocated (bytes)."""
    step(data[0])
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for item in data[1:]:
        step(item)
    torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / (len(data) - 1), torch.cuda.max_memory_allocated(device)


def one_gpu(case: Case) -> dict:
    device = torch.device("cuda", 0)
    data = case.batches(case.batch, device, case.iterations + 1, seed=1)
    torch.manual_seed(0)
    base = case.base_network().to(device)
    parameters = list(base.parameters())
    optimizer = torch.optim.SGD(parameters, 0.01, momentum=0.99, nesterov=True)
    scaler = torch.amp.GradScaler("cuda")
    train_seconds, train_memory = seconds_per_iteration(
        lambda b: training_step(base, parameters, optimizer, scaler, b, device), data, device)
    del base, optimizer
    torch.cuda.empty_cache()

    search = Search(case, device)
    start = search.alpha_beta()
    val = case.batches(case.batch, device, 1, seed=2)[0]
    losses = []
    search_seconds, search_memory = seconds_per_iteration(lambda b: losses.append(search.iteration(b, val)), data,
                                                          device)
    end = search.alpha_beta()
    return {"device": torch.cuda.get_device_name(device), **asdict(case),
            "training_seconds_per_iteration": train_seconds, "search_seconds_per_iteration": search_seconds,
            "search_over_training": search_seconds / train_seconds,
            "training_peak_memory_gib": train_memory / 2 ** 30, "search_peak_memory_gib": search_memory / 2 ** 30,
            "architecture_scale": search.strategy.grad_scaler.get_scale(),
            "alpha_beta_moved": any(not torch.equal(a, b) for a, b in zip(start, end)),
            "finite": all(torch.isfinite(t).all() for t in end) and all(map(_finite_pair, losses))}


def _finite_pair(pair) -> bool:
    return all(x == x and abs(x) != float("inf") for x in pair)


def _ddp_rank(rank: int, init_file: str, case: Case, out: str, device_type: str) -> None:
    """One rank: NCCL on GPU ``rank``; gloo on the CPU (what tests/tools/test_gpu_check.py runs of this script)."""
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", init_method=f"file://{init_file}",
                            rank=rank, world_size=2)
    device = torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")
    if device_type == "cuda":
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(1)
    try:
        search = Search(case, device, ddp=True)
        start = search.alpha_beta()
        share = case.batch // 2
        for train, val in zip(case.batches(share, device, case.iterations, seed=10 + rank),
                              case.batches(share, device, case.iterations, seed=100 + rank)):
            search.iteration(train, val)
        torch.save({"start": start, "end": search.alpha_beta()}, os.path.join(out, f"rank{rank}.pth"))
    finally:
        dist.destroy_process_group()


def two_gpus(case: Case, device_type: str = "cuda") -> dict:
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_ddp_rank, args=(os.path.join(folder, "init"), case, folder, device_type), nprocs=2)
        ranks = [torch.load(os.path.join(folder, f"rank{r}.pth"), weights_only=True) for r in (0, 1)]
    first, second = ranks
    return {"ranks": 2, "iterations": case.iterations,
            "alpha_beta_moved": any(not torch.equal(a, b) for a, b in zip(first["start"], first["end"])),
            "alpha_beta_equal_on_both_ranks": all(torch.equal(a, b) for a, b in zip(first["end"], second["end"]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--dim", type=int, choices=(2, 3), default=3)
    parser.add_argument("--batch", type=int, default=9, help="global batch (nnU-Net's Hippocampus 3d_fullres: 9)")
    parser.add_argument("--network", choices=("hippocampus", "tiny"), default="hippocampus")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason:
        print(f"gpu_check: skipped, {reason}; nothing was run.")
        return 0
    case = Case(args.dim, args.batch, args.iterations, args.network)
    results = {"one_gpu": one_gpu(case)}
    results["ddp_nccl"] = two_gpus(case) if torch.cuda.device_count() >= 2 else "skipped: fewer than 2 GPUs"
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    single, ddp = results["one_gpu"], results["ddp_nccl"]
    passed = single["alpha_beta_moved"] and single["finite"] and \
        (not isinstance(ddp, dict) or (ddp["alpha_beta_equal_on_both_ranks"] and ddp["alpha_beta_moved"]))
    print(f"gpu_check: {'passed' if passed else 'FAILED'}; search/training iteration time "
          f"{single['search_over_training']:.2f}x, peak memory {single['search_peak_memory_gib']:.2f} GiB (search) "
          f"vs {single['training_peak_memory_gib']:.2f} GiB (training)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
