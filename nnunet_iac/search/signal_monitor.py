"""Does the search (or the retrain) get any gradient signal? Gradient SNR over an epoch and projection norms.

Measured on CPU (docs/benchmarks.md), alpha's entropy barely moved (2.0794 -> 2.0760) and the cells' output
projections grew like sqrt(steps), a random walk. Both are what updates driven by noise look like. The
numbers here show it in the first epochs, before a long search has been paid for (docs/signal_diagnostics.md).

**Gradient SNR of a parameter group** (alpha, beta, or one level's output projection: weight, bias and
the output gate if the cell has one), over the n batches of one epoch whose gradients were all finite:
with g_b the group's gradient at batch b (one vector over all its elements i),

    m_i   = (1/n) sum_b g_b,i                               mean gradient
    s_i^2 = sum_b (g_b,i - m_i)^2 / (n - 1)                 sample variance per element
    SNR   = ||m||_2 / sqrt(sum_i s_i^2 / n)

the norm of the epoch's mean gradient over the norm that the mean would have from noise alone (each
element's standard error s_i / sqrt(n), summed in quadrature). Why this summary and not, say, the median
of the per-element ratios |m_i| / (s_i / sqrt(n)): it needs only the running sums of g and g^2, it is
defined whenever any element varies (a per-element ratio is 0/0 for elements without gradient), it
does not change when the loss is scaled (so fp16 loss scaling, levels of very different gradient size
and the 1e-8 gradients of alpha in residual mode compare directly), and it has a fixed noise floor:
with a true mean gradient mu, E ||m||^2 = ||mu||^2 + sum_i sigma_i^2 / n, so
SNR^2 ~ 1 + n ||mu||^2 / sum_i sigma_i^2. Pure noise gives SNR ~ 1 for any group size and n; SNR 1.4
means the true mean is about as large as the noise in its estimate; a consistent direction grows like
sqrt(n). Near 1, the group's updates over the epoch are a random walk. NaN: fewer than 2 batches
(alpha and beta during warm-up) or no variation at all.

Cost: two running sums per element on the parameters' device (float64, float32 on MPS), added without
any synchronisation or copy to the CPU per batch; one reduction per group at the end of the epoch.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from nnunet_iac.network.implant import implanted_decoder

PROJECTION = "projection_{}"


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class GradientSignal:
    """Running sums of the current ``.grad`` of named parameter groups, one epoch at a time.

    Call ``observe()`` after each backward pass (after ``GradScaler.unscale_``, so the gradients are the
    true ones) and before the gradients are cleared; ``snr()`` at the end of the epoch; ``reset()``
    before the next. A batch in which any gradient of a group is inf/NaN (a step the GradScaler skips)
    is not counted for that group.
    """

    def __init__(self, groups: Mapping[str, Sequence[torch.Tensor]]):
        empty = [name for name, params in groups.items() if not list(params)]
        if empty:
            raise ValueError(f"GradientSignal: parameter group(s) {', '.join(empty)} hold no tensors; pass at "
                             f"least one parameter per group.")
        self.groups = {name: list(params) for name, params in groups.items()}
        self.reset()

    def reset(self) -> None:
        self._count = {}
        self._sum = {}
        self._sum_sq = {}
        for name, params in self.groups.items():
            dtype = _accumulator_dtype(params[0].device)
            self._count[name] = torch.zeros((), dtype=dtype, device=params[0].device)
            self._sum[name] = [torch.zeros(p.shape, dtype=dtype, device=p.device) for p in params]
            self._sum_sq[name] = [torch.zeros(p.shape, dtype=dtype, device=p.device) for p in params]

    @torch.no_grad()
    def observe(self) -> None:
        for name, params in self.groups.items():
            grads = [p.grad for p in params]
            if any(g is None for g in grads):
                continue
            finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
            self._count[name] += finite
            for total, total_sq, g in zip(self._sum[name], self._sum_sq[name], grads):
                g = torch.where(finite, g, torch.zeros((), dtype=g.dtype, device=g.device)).to(total.dtype)
                total += g
                total_sq += g * g

    @torch.no_grad()
    def snr(self) -> dict[str, float]:
        """Per group: ||mean gradient|| / sqrt(sum of squared standard errors); NaN if undefined."""
        result = {}
        for name in self.groups:
            n = float(self._count[name])
            if n < 2:
                result[name] = math.nan
                continue
            signal_sq = noise_sq = 0.0
            for total, total_sq in zip(self._sum[name], self._sum_sq[name]):
                mean = total / n
                variance = ((total_sq - n * mean * mean) / (n - 1)).clamp_min(0)
                signal_sq += float((mean * mean).sum())
                noise_sq += float(variance.sum()) / n
            result[name] = math.sqrt(signal_sq / noise_sq) if noise_sq > 0 else math.nan
        return result

    def batches(self) -> dict[str, int]:
        """How many batches each group's SNR is taken over."""
        return {name: int(count) for name, count in self._count.items()}


def output_parameters(cell: nn.Module) -> list[nn.Parameter]:
    """What scales a cell's output: its projection's weight and bias, and its output gate if it has one."""
    gate = getattr(cell, "output_gate", None)
    return list(cell.output_projection.parameters()) + ([] if gate is None else [gate])


def projection_norms(network: nn.Module) -> list[float]:
    """Per level (0 = lowest resolution) the L2 norm of the output projection's weight and bias, times
    |gate| for a gated cell: how far the cell's output has moved from zero."""
    norms = []
    with torch.no_grad():
        for cell in implanted_decoder(network).iac_cells:
            norm = math.sqrt(sum(float((p.double() ** 2).sum()) for p in cell.output_projection.parameters()))
            gate = getattr(cell, "output_gate", None)
            norms.append(norm if gate is None else norm * abs(float(gate)))
    return norms


class CellSignalMonitor:
    """The diagnostics of one implanted network (supernet or discrete cells), per epoch.

    ``observe_architecture()`` after the alpha/beta backward pass, ``observe_cells()`` after the cell
    weights' backward pass (e.g. right after nnU-Net's ``train_step``, whose gradients stay in ``.grad``),
    ``epoch_summary()`` at the end of the epoch, ``reset()`` at its start. Nothing of it needs to be
    checkpointed: an epoch is the unit nnU-Net resumes from, and the sums start empty in every epoch.
    """

    def __init__(self, network: nn.Module):
        decoder = implanted_decoder(network)
        self._network = network
        self.levels = len(decoder.iac_cells)
        self.cells = GradientSignal({PROJECTION.format(level): output_parameters(cell)
                                     for level, cell in enumerate(decoder.iac_cells)})
        arch = decoder.iac_architecture
        self.architecture = None if arch is None else GradientSignal({"alpha": [arch.alpha], "beta": [arch.beta]})

    def reset(self) -> None:
        self.cells.reset()
        if self.architecture is not None:
            self.architecture.reset()

    def observe_cells(self) -> None:
        self.cells.observe()

    def observe_architecture(self) -> None:
        if self.architecture is None:
            raise ValueError("observe_architecture: this network has no alpha/beta (discrete cells); call "
                             "observe_cells() only.")
        self.architecture.observe()

    def epoch_summary(self) -> dict:
        """``snr_projection`` and ``projection_norm`` per level; ``snr_alpha`` / ``snr_beta`` for a supernet."""
        cells = self.cells.snr()
        summary = {"snr_projection": [cells[PROJECTION.format(level)] for level in range(self.levels)],
                   "projection_norm": projection_norms(self._network)}
        if self.architecture is not None:
            arch = self.architecture.snr()
            summary = {"snr_alpha": arch["alpha"], "snr_beta": arch["beta"], **summary}
        return summary


def describe_signal(summary: dict) -> str:
    """One log line of an ``epoch_summary``."""
    def fmt(values):
        return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"

    arch = f"alpha {summary['snr_alpha']:.3g}, beta {summary['snr_beta']:.3g}, " if "snr_alpha" in summary else ""
    return (f"gradient SNR (~1 = noise only): {arch}projections per level "
            f"{fmt(summary['snr_projection'])}; projection norms {fmt(summary['projection_norm'])}")
