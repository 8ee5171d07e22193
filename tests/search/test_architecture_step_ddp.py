"""The architecture step under DDP (issue 39): alpha/beta gradients averaged over ranks before Adam steps.

Two processes with the gloo backend on the CPU run the real ``architecture_step`` on one small supernet, each
on its half of a global batch of 4, for several steps; one process runs it on the whole batch. nnU-Net's DDP
wrapper is not involved: the architecture step goes past it (``architecture_step``'s docstring), so a plain
process group is all it needs. What this does not run: NCCL and CUDA (``scripts/gpu_check.sh`` does).

``test_without_the_all_reduce_the_ranks_disagree`` repeats the steps in the same two processes with
``average_gradients`` replaced by a no-op and shows that the checks above would then fail: the break check of
the issue. One spawn of two processes serves every test here (about 10 s on 2 idle cores).
"""
import contextlib
import os
import pickle

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.network.implant import architecture_parameters, freeze_base
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search import architecture_step as search_step
from nnunet_iac.search.optimizers import architecture_optimizer

CPU = torch.device("cpu")
STEPS = 3
#: the step at which rank 1's loss is inf (its scaled gradients overflow), in the scaler scenario
OVERFLOW_STEP = 2


def supernet() -> nn.Module:
    torch.manual_seed(0)
    network = freeze_base(implant_search_cells(tiny_plain_unet(2, deep_supervision=False, n_stages=3)))
    for parameter in network.parameters():  # the cells' output projections start at zero: give alpha a signal
        if parameter.requires_grad and parameter.dim() > 1:
            nn.init.normal_(parameter, std=0.1)
    return network.train()


def global_batches() -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    return [{"data": torch.randn(4, 1, 16, 16, generator=generator),
             "target": torch.randint(0, 3, (4, 16, 16), generator=generator)} for _ in range(STEPS)]


def part(batch: dict, rank: int, world_size: int) -> dict:
    share = batch["data"].shape[0] // world_size
    return {key: value[rank * share:(rank + 1) * share] for key, value in batch.items()}


def search(rank: int = 0, world_size: int = 1, scaler: bool = False, overflow_rank: int | None = None) -> dict:
    """STEPS architecture steps on this rank's share of every global batch; alpha/beta and the scaler after."""
    network = supernet()
    params = architecture_parameters(network)
    optimizer = architecture_optimizer(params, 0.05)
    grad_scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10) if scaler else None
    for step, batch in enumerate(global_batches()):
        overflow = overflow_rank == rank and step == OVERFLOW_STEP

        def loss(output, target, overflow=overflow):
            value = nn.functional.cross_entropy(output, target)
            return value * float("inf") if overflow else value

        search_step.architecture_step(network, loss, part(batch, rank, world_size), optimizer, CPU, grad_scaler)
    return {"parameters": [p.detach().clone() for p in params],
            "scale": grad_scaler.get_scale() if grad_scaler else None,
            "adam_steps": [float(optimizer.state[p]["step"]) for p in params]}


def _rank(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        results = {"plain": search(rank, 2), "scaled": search(rank, 2, scaler=True, overflow_rank=1)}
        with _patched(search_step, "average_gradients", lambda parameters: None):
            results["unsynchronised"] = {"plain": search(rank, 2),
                                         "scaled": search(rank, 2, scaler=True, overflow_rank=1)}
        with open(os.path.join(out, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(results, f)
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _patched(module, name, value):
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank, args=(str(folder / "init"), str(folder)), nprocs=2)
    return [pickle.loads((folder / f"rank{rank}.pkl").read_bytes()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def single():
    """One process on the global batches, on one thread like each rank (two threads on a busy 2-core machine
    made these three steps take 30 s instead of 3)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return search()
    finally:
        torch.set_num_threads(threads)


def test_alpha_and_beta_are_identical_on_every_rank_after_several_steps(ranks):
    start = [p.detach() for p in architecture_parameters(supernet())]
    for scenario in ("plain", "scaled"):
        for p0, p1, initial in zip(ranks[0][scenario]["parameters"], ranks[1][scenario]["parameters"], start):
            assert torch.equal(p0, p1), scenario
            assert not torch.equal(p0, initial), f"{scenario}: alpha/beta must have moved"


def test_two_ranks_step_as_one_process_on_the_global_batch(ranks, single):
    for p0, reference in zip(ranks[0]["plain"]["parameters"], single["parameters"]):
        torch.testing.assert_close(p0, reference, rtol=1e-5, atol=1e-6)


def test_an_overflow_on_one_rank_is_a_skipped_step_on_every_rank(ranks):
    """Rank 1's gradients are inf at one step: both scalers skip it and back off, both Adams step one less."""
    for rank in ranks:
        assert rank["scaled"]["scale"] == 2.0 ** 9
        assert rank["scaled"]["adam_steps"] == [STEPS - 1.0] * len(rank["scaled"]["adam_steps"])


def test_without_the_all_reduce_the_ranks_disagree(ranks, single):
    """The break check: the tests above fail when ``average_gradients`` is taken out of the step."""
    ranks = [rank["unsynchronised"] for rank in ranks]
    differ = [not torch.equal(p0, p1) for p0, p1 in zip(ranks[0]["plain"]["parameters"], ranks[1]["plain"]["parameters"])]
    assert all(differ)
    assert any(not torch.allclose(p0, reference, rtol=1e-5, atol=1e-6)
               for p0, reference in zip(ranks[0]["plain"]["parameters"], single["parameters"]))
    assert ranks[0]["scaled"]["adam_steps"] != ranks[1]["scaled"]["adam_steps"], \
        "without the all-reduce only the overflowing rank skips its step"
