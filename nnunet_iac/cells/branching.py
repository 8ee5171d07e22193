"""Branch inputs from neighbouring levels (``nnUNet_IAC_branching``, issue 18, after Bractivate's dendritic branching).

Bractivate (``../shared/papers/bractivate.txt``) grows U-Net skip connections by "branching": a block also
receives the encoder features of other levels, resized to fit, merged by concatenation or addition. Here a cell
at a decoder level may take, besides its own skip and the upsampled features, the encoder features of its two
neighbouring levels:

- ``lower``: the encoder output one level deeper (half the resolution; at the lowest decoder level, the
  bottleneck), upsampled to the level's size (nearest neighbour);
- ``higher``: the encoder skip one level up (double the resolution), average-pooled down to the level's size;
  the highest level has none.

Each branch is reduced to the cell width like the cell's own inputs (nonlinearity, 1x1 convolution, norm) and
merged in one of three ways, the **merge** being what the search chooses per direction (shared by all levels,
as alpha is): ``none`` (not used), ``add`` (summed into the cell's reduced skip, so every operation sees it) or
``concat`` (concatenated to the nodes the output projection reads, so it reaches the decoder directly). The
supernet weights the three by a softmax of ``branch_alpha`` (directions x merges); the genotype records the
strongest merge per direction (``Genotype.branches``), and the discrete cell builds only what it chose.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OFF, ON = "off", "on"
BRANCHING = (OFF, ON)
DIRECTIONS = ("lower", "higher")
NONE, ADD, CONCAT = "none", "add", "concat"
MERGES = (NONE, ADD, CONCAT)


class BranchingError(ValueError):
    """A branching setting or a genotype's branches that nnunet-iac cannot build."""


def check_branching(value: str) -> str:
    if value not in BRANCHING:
        raise BranchingError(f"branching {value!r} is neither 'off' nor 'on' (cells take the encoder features of "
                             f"their neighbouring levels and the search chooses how to merge them).")
    return value


def check_branches(branches: dict) -> dict[str, str]:
    """A genotype's branches: every direction once, each with a known merge."""
    if not isinstance(branches, dict) or set(branches) != set(DIRECTIONS) \
            or any(branches[d] not in MERGES for d in DIRECTIONS):
        raise BranchingError(f"branches {branches!r} must give each of {', '.join(DIRECTIONS)} one merge of "
                             f"{', '.join(MERGES)}.")
    return {d: branches[d] for d in DIRECTIONS}


def neighbour_channels(encoder_channels, stage: int) -> dict[str, int]:
    """Channels of the neighbouring encoder outputs of decoder ``stage`` (0 = lowest resolution) that exist."""
    channels = list(encoder_channels)
    found = {"lower": channels[-(stage + 1)]}
    if stage + 3 <= len(channels):
        found["higher"] = channels[-(stage + 3)]
    return found


def neighbour_features(skips: list[torch.Tensor], stage: int) -> dict[str, torch.Tensor]:
    """The neighbouring encoder outputs of decoder ``stage`` (``skips``: the encoder's outputs, deepest last)."""
    found = {"lower": skips[-(stage + 1)]}
    if stage + 3 <= len(skips):
        found["higher"] = skips[-(stage + 3)]
    return found


def resample(x: torch.Tensor, size) -> torch.Tensor:
    """``x`` at spatial ``size``: average-pooled where it is larger, nearest-upsampled where smaller."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if all(a >= b for a, b in zip(x.shape[2:], size)):
        pool = (F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[x.ndim - 4]
        return pool(x, size)
    return F.interpolate(x, size=size, mode="nearest")


def derive_branches(branch_weights: torch.Tensor) -> dict[str, str]:
    """The strongest merge per direction (rows: directions, columns: merges); ties go to the earlier merge."""
    return {d: MERGES[int(torch.argmax(branch_weights[i]))] for i, d in enumerate(DIRECTIONS)}
