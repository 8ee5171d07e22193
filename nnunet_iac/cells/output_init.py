"""How a residual cell's output starts (``nnUNet_IAC_init``): the remedies for a cell that gets no signal.

In ``residual`` mode the decoder stage sees ``cat(up, skip) + cell(skip, up)``.

- ``zero`` (default): the output projection is zero, so the implanted network starts exactly as the
  base. Every weight inside the cell then gets an exactly-zero gradient (it reaches them through the zero
  projection), and the projection's own gradient is, for the part of the cell that is linear in its input,
  the frozen first decoder conv's weight gradient pushed through that conv: ~0 on a converged base
  (issue 13, hypothesis 2). Only the projection moves at first, slowly.
- ``small``: the projection is random with weight std ``SMALL_OUTPUT_FRACTION / sqrt(fan_in)``, bias 0.
  The concatenated nodes it reads end in the cell's norms (or are sums and pools of normed states), so
  they have roughly unit variance; the cell output then has std ~ ``SMALL_OUTPUT_FRACTION`` (1e-2) of
  those normed states, i.e. about 1 % of a normed activation of the base's merged input. The start is not
  exactly the base, but the first decoder conv sees a ~1 % perturbation, and every cell weight gets a
  gradient (scaled by 1e-2) from the first step.
- ``gate``: a learnable scalar per level, starting at 0 (ReZero), multiplies a cell whose projection is
  random at unit gain (std ``1 / sqrt(fan_in)``, so the ungated output is on the scale of the normed
  states and the gate's value reads as the cell's fraction of them). The network starts exactly as the
  base, and the gate's gradient is the inner product of the upstream gradient with the (non-zero) cell
  output: non-zero from the first step.

``replace`` mode has no merged input to preserve: the cell *is* the stage input, so only ``zero`` (which
there leaves the projection at its ordinary random initialization) is accepted with it.
"""
from __future__ import annotations

import math

from torch import nn

INITS = ("zero", "small", "gate")
SMALL_OUTPUT_FRACTION = 1e-2
GATE_PROJECTION_GAIN = 1.0


class CellInitError(ValueError):
    """An output initialization that does not fit the implant mode."""


def check_init(init: str, mode: str) -> None:
    """Refuse unknown inits, and inits other than ``zero`` outside ``residual`` mode."""
    if init not in INITS:
        raise CellInitError(f"Unknown cell init {init!r}; use one of {', '.join(INITS)}.")
    if init != "zero" and mode != "residual":
        raise CellInitError(f"Cell init {init!r} only applies to residual mode (it sets how the cell's output starts "
                            f"next to the merged input); mode {mode!r} has no merged input. Use init 'zero' with "
                            f"mode {mode!r}, or mode 'residual'.")


def random_projection(projection: nn.Module, gain: float) -> None:
    """Weights ~ N(0, gain^2 / fan_in), bias 0: output std ~ gain x the std of unit-variance inputs."""
    fan_in = projection.weight[0].numel()
    nn.init.normal_(projection.weight, 0.0, gain / math.sqrt(fan_in))
    if projection.bias is not None:
        nn.init.zeros_(projection.bias)


def initialize_output(cell: nn.Module, init: str, mode: str) -> None:
    """Apply ``init`` to a freshly built cell (a ``CellFrame``) implanted with ``mode``."""
    check_init(init, mode)
    if mode != "residual":
        return
    if init == "zero":
        cell.zero_output()
    elif init == "small":
        random_projection(cell.output_projection, SMALL_OUTPUT_FRACTION)
    else:
        random_projection(cell.output_projection, GATE_PROJECTION_GAIN)
        cell.add_output_gate()
