"""Probing a convolution's weights: how much of it is signal, after the noise is factored out (issue 17).

DARTS-ADP (``../shared/papers/probeable-darts-adp.txt``) probes each convolution of a DARTS search with the
metrics of the Adas paper (Hosseini & Plataniotis, arXiv 2006.06587): the weight tensor is unfolded into a
matrix, a low-rank factorization removes the part that is indistinguishable from noise, and the singular
values of what is left tell how much the layer has learned. Here, written from those descriptions:

- **Low-rank part**: empirical variational Bayesian matrix factorization (EVBMF; Nakajima et al., "Global
  analytic solution of fully-observed variational Bayesian matrix factorization", JMLR 2013), whose global
  solution is analytic: with ``Y`` of shape L x M (L <= M, alpha = L/M) and singular values gamma_h, the
  noise variance sigma^2 minimises the free energy below, and a component is kept when
  gamma_h > sigma sqrt(M x_bar), x_bar = (1 + tau_bar)(1 + alpha/tau_bar), tau_bar = 2.5129 sqrt(alpha); a kept
  component shrinks to
  gamma_h/2 (1 - (L+M) sigma^2/gamma_h^2 + sqrt((1 - (L+M) sigma^2/gamma_h^2)^2 - 4 L M sigma^4/gamma_h^4)).
- **Stable rank** (DARTS-ADP's name; Adas calls it knowledge gain): the sum of the low-rank part's singular
  values over (N x the largest), N = L: 0 for a layer that is all noise, 1 for one whose every direction carries
  the same energy. **Condition**: the largest over the smallest kept singular value (Adas' mapping condition;
  NaN when nothing is kept).
- A convolution weight (out, in, k...) is unfolded along its output channels (out x in.k...) and along its input
  channels (in x out.k...); the two metrics are averaged over both unfoldings, as Adas does with its channel
  modes. An unfolding with a single row or column is left out: a depthwise weight (C, 1, k...) unfolds along
  its input into one row, whose rank is 1 whatever the layer learned; a weight with no unfolding left (a
  single channel each way) is reported as all noise (stable rank 0), not guessed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar

TAU_BAR_FACTOR = 2.5129  # Nakajima et al.: tau_bar = 2.5129 sqrt(alpha)


@dataclass(frozen=True)
class Probe:
    stable_rank: float
    condition: float
    kept: int


def _tau(x: np.ndarray, alpha: float) -> np.ndarray:
    return 0.5 * (x - (1 + alpha) + np.sqrt(np.maximum((x - (1 + alpha)) ** 2 - 4 * alpha, 0.0)))


def _free_energy(sigma2: float, gammas: np.ndarray, L: int, M: int, residual: float, x_bar: float) -> float:
    """Nakajima et al.'s objective for the noise variance (up to constants)."""
    alpha = L / M
    x = gammas ** 2 / (M * sigma2)
    above, below = x[x > x_bar], x[x <= x_bar]
    tau = _tau(above, alpha)
    value = np.sum(below - np.log(below + np.finfo(float).tiny))
    value += np.sum(above - tau) + np.sum(np.log((tau + 1) / above)) + alpha * np.sum(np.log(tau / alpha + 1))
    return float(value + residual / (M * sigma2) + (L - len(gammas)) * math.log(sigma2))


def evbmf_singular_values(matrix: np.ndarray) -> np.ndarray:
    """The singular values of EVBMF's low-rank estimate of ``matrix`` (descending; zeros dropped)."""
    Y = np.asarray(matrix, dtype=float)
    if Y.shape[0] > Y.shape[1]:
        Y = Y.T
    L, M = Y.shape
    gammas = np.linalg.svd(Y, compute_uv=False)
    alpha = L / M
    tau_bar = TAU_BAR_FACTOR * math.sqrt(alpha)
    x_bar = (1 + tau_bar) * (1 + alpha / tau_bar)
    total = float(np.sum(Y ** 2))
    if total == 0.0:
        return np.zeros(0)
    residual = max(total - float(np.sum(gammas ** 2)), 0.0)
    # the noise variance lies between what the smallest components alone and everything together would give
    upper = total / (L * M)
    lower = max(gammas[-1] ** 2 / (M * x_bar), upper * 1e-8)
    if lower >= upper:
        sigma2 = upper
    else:
        sigma2 = minimize_scalar(_free_energy, args=(gammas, L, M, residual, x_bar), bounds=(lower, upper),
                                 method="bounded").x
    threshold = math.sqrt(M * sigma2 * x_bar)
    kept = gammas[gammas > threshold]
    ratio = (L + M) * sigma2 / kept ** 2
    shrunk = kept / 2 * (1 - ratio + np.sqrt(np.maximum((1 - ratio) ** 2 - 4 * L * M * sigma2 ** 2 / kept ** 4, 0.0)))
    return shrunk[shrunk > 0]


def probe_matrix(matrix: np.ndarray) -> Probe:
    values = evbmf_singular_values(matrix)
    n = min(np.shape(matrix))
    if len(values) == 0:
        return Probe(0.0, float("nan"), 0)
    return Probe(float(values.sum() / (n * values[0])), float(values[0] / values[-1]), len(values))


def probe_convolution(weight: torch.Tensor) -> Probe:
    """The stable rank and condition of a convolution weight, averaged over its two channel unfoldings."""
    w = weight.detach().float().cpu().numpy()
    out_channels, in_channels = w.shape[:2]
    unfoldings = [m for m in (w.reshape(out_channels, -1), np.moveaxis(w, 1, 0).reshape(in_channels, -1))
                  if min(m.shape) > 1]
    if not unfoldings:
        return Probe(0.0, float("nan"), 0)
    probes = [probe_matrix(m) for m in unfoldings]
    conditions = [p.condition for p in probes if not math.isnan(p.condition)]
    return Probe(float(np.mean([p.stable_rank for p in probes])),
                 float(np.mean(conditions)) if conditions else float("nan"),
                 int(round(np.mean([p.kept for p in probes]))))
