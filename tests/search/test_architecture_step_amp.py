"""The alpha/beta step under fp16 autocast needs its own GradScaler (issue 13, item 1).

What these CPU tests run: the real ``architecture_step`` on a small supernet under CPU autocast with
float16 (the trainer uses autocast on CUDA only, so ``search_step.mixed_precision`` is replaced by a
CPU float16 autocast here) with ``torch.amp.GradScaler("cpu")``, which implements the same scale /
unscale_ / skip-on-inf / update logic as the CUDA scaler.

What they do not cover: CUDA's fp16 kernels (cuDNN convolutions may round and accumulate differently
from the CPU's float16 path), the CUDA scaler's fused unscale kernel, and a whole search on a GPU with
the trainer's own scaler (its creation on CUDA is checked below only as "a GradScaler for cuda, None
elsewhere"). No GPU was available to this project when these were written.
"""
import contextlib

import pytest
import torch
from torch import nn

from nnunet_iac.search import architecture_step as search_step
from nnunet_iac.network.builders import implant_search_cells
from nnunet_iac.nnunet.checkpointing import atomic_torch_save, safe_load
from nnunet_iac.network.implant import architecture_parameters, freeze_base, implanted_decoder
from nnunet_iac.search.optimizers import architecture_optimizer
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.network.reference_networks import tiny_plain_unet
from nnunet_iac.search.history import SearchHistory
from nnunet_iac.search.architecture_step import architecture_grad_scaler, architecture_step
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer
from nnunet_iac.nnunet.settings import IACSettings
from nnunet_iac.search.signal_monitor import CellSignalMonitor

CPU = torch.device("cpu")
# A residual cell's projection early in the search: alpha gradients of order 1e-11..1e-8 in float32.
PROJECTION_STD = 1e-6


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    network = freeze_base(implant_search_cells(tiny_plain_unet(2, deep_supervision=False)))
    for cell in implanted_decoder(network).iac_cells:
        nn.init.normal_(cell.output_projection.weight, std=PROJECTION_STD)
    batch = {"data": torch.randn(2, 1, 16, 16), "target": torch.randint(0, 3, (2, 16, 16))}
    return network.train(), batch


def cross_entropy(output, target):
    return nn.functional.cross_entropy(output, target)


@contextlib.contextmanager
def precision(monkeypatch, dtype):
    """Run the step under CPU autocast with ``dtype`` (None: float32, no autocast)."""
    def context(device):
        return torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()

    with monkeypatch.context() as patch:
        patch.setattr(search_step, "mixed_precision", context)
        yield


def gradients_of_one_step(monkeypatch, supernet, dtype, scaler):
    """alpha and beta gradients as ``on_gradients`` sees them; the parameters are put back afterwards."""
    network, batch = supernet
    params = architecture_parameters(network)
    before = [p.detach().clone() for p in params]
    seen = {}
    with precision(monkeypatch, dtype):
        architecture_step(network, cross_entropy, batch, architecture_optimizer(params), CPU, scaler,
                          lambda: seen.update(grads=[p.grad.clone() for p in params]))
    with torch.no_grad():
        for p, value in zip(params, before):
            p.copy_(value)
    return seen["grads"]


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_fp16_alpha_beta_gradients_underflow_without_scaler_and_survive_with_it(monkeypatch, supernet):
    reference = gradients_of_one_step(monkeypatch, supernet, None, None)
    unscaled = gradients_of_one_step(monkeypatch, supernet, torch.float16, None)
    scaled = gradients_of_one_step(monkeypatch, supernet, torch.float16, torch.amp.GradScaler("cpu"))
    for name, ref, lost, kept in zip(("alpha", "beta"), reference, unscaled, scaled):
        assert (ref != 0).all() and ref.abs().max() < 1e-6, f"{name}: the setting should give tiny gradients"
        assert (lost == 0).float().mean() > 0.9, f"{name}: fp16 without a scaler should flush them to zero"
        assert (kept != 0).all(), name
        assert cosine(kept, ref) > 0.99, name
        assert (kept - ref).norm() < 0.2 * ref.norm(), f"{name}: gradients seen after unscale_ are the true ones"


def test_overflowing_step_is_skipped_and_the_scale_backs_off(monkeypatch, supernet):
    network, batch = supernet
    params = architecture_parameters(network)
    before = [p.detach().clone() for p in params]
    optimizer = architecture_optimizer(params)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 60)  # scaled gradients overflow float16
    monitor = CellSignalMonitor(network)
    with precision(monkeypatch, torch.float16):
        loss = architecture_step(network, cross_entropy, batch, optimizer, CPU, scaler, monitor.observe_architecture)
    assert torch.isfinite(torch.tensor(loss)), "the loss itself is finite; only the scaled gradients overflow"
    assert all(torch.equal(p, b) for p, b in zip(params, before)), "the step with inf gradients must be skipped"
    assert not optimizer.state, "Adam must not have stepped"
    assert scaler.get_scale() == 2.0 ** 59
    assert monitor.architecture.batches() == {"alpha": 0, "beta": 0}, "a skipped step is no gradient sample"


def test_the_trainer_makes_the_architecture_scaler_on_cuda_only():
    assert architecture_grad_scaler(CPU) is None
    assert architecture_grad_scaler(torch.device("mps")) is None
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        assert isinstance(architecture_grad_scaler(torch.device("cuda")), torch.amp.GradScaler)


def _bare_trainer(scaler):
    """A search trainer with only the attributes iac_state / restore_iac_state use (no dataset needed)."""
    trainer = IACSearchTrainer.__new__(IACSearchTrainer)
    trainer.iac_settings = IACSettings.from_env({})
    trainer.strategy = PCDartsStrategy()
    trainer.strategy.optimizer = torch.optim.Adam([nn.Parameter(torch.ones(3))])
    trainer.strategy.grad_scaler = scaler
    trainer.history, trainer.search_split = SearchHistory(), None
    return trainer


def test_architecture_scaler_state_is_checkpointed_and_restored(monkeypatch, supernet, tmp_path):
    network, batch = supernet
    params = architecture_parameters(network)
    before = [p.detach().clone() for p in params]
    used = torch.amp.GradScaler("cpu", init_scale=2.0 ** 60, growth_interval=7)
    with precision(monkeypatch, torch.float16):
        architecture_step(network, cross_entropy, batch, architecture_optimizer(params), CPU, used)
    with torch.no_grad():
        for p, value in zip(params, before):
            p.copy_(value)
    atomic_torch_save({"iac": _bare_trainer(used).iac_state()}, tmp_path / "checkpoint.pth")

    resumed = _bare_trainer(torch.amp.GradScaler("cpu"))
    resumed.restore_iac_state(safe_load(tmp_path / "checkpoint.pth")["iac"])
    assert resumed.strategy.grad_scaler.state_dict() == used.state_dict()
    assert resumed.strategy.grad_scaler.get_scale() == 2.0 ** 59

    without_scaler = _bare_trainer(None)
    without_scaler.restore_iac_state(safe_load(tmp_path / "checkpoint.pth")["iac"])  # CPU resume of a GPU run
    assert _bare_trainer(None).iac_state()["strategy"]["state"]["arch_grad_scaler_state"] is None
