"""scripts/gpu_check.sh: a clean skip without CUDA, and its search iteration and DDP logic run on the CPU.

On a machine without a GPU the script's CUDA part cannot run; what runs here is its ``Search`` iteration (the
PC-DARTS step and the cell step with a CPU GradScaler) and its two-rank logic with gloo instead of NCCL, on
the tiny 2d network, so that the script's own code is not first run on someone's GPU.
"""
import importlib
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def gpu_check(monkeypatch):
    """The script as a module (on sys.path, so that the two spawned ranks import it too)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module("gpu_check")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script runs instead of skipping")
def test_without_cuda_the_check_is_a_clean_skip():
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gpu_check: skipped, no CUDA device")


def test_the_search_iteration_moves_alpha_and_two_ranks_agree_on_the_cpu(monkeypatch):
    module = gpu_check(monkeypatch)
    case = module.Case(dim=2, batch=2, iterations=2, network="tiny", patch=(16, 16))
    search = module.Search(case, torch.device("cpu"))
    start = search.alpha_beta()
    train, val = case.batches(2, torch.device("cpu"), 2, seed=1)
    losses = [search.iteration(train, val) for _ in range(2)]  # alpha moves once a cell's projection is not 0
    assert all(map(module._finite_pair, losses))
    assert any(not torch.equal(a, b) for a, b in zip(start, search.alpha_beta()))
    ddp = module.two_gpus(case, device_type="cpu")
    assert ddp["alpha_beta_equal_on_both_ranks"] and ddp["alpha_beta_moved"]
