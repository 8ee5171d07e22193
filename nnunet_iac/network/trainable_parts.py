"""Which weights of a trained U-Net a parameter-efficient fine-tuning trains: the controls IAC is judged against.

Adapting a base to a new site, the literature's cheap baselines train a part of the network and freeze the rest
(issue 36): the decoder (what IAC's cells change), the normalization layers' affine weights with every bias (the
classic parameter-efficient baseline: it moves each channel's scale and shift, where a change of stain or contrast
shows first), or the first encoder stage (where domain information sits, and the resolution the cells' first skip
sees). ``train_only`` freezes everything else; nnU-Net's optimizer then leaves frozen weights as they are (they
get no gradient). 2D and 3D alike: parts are found by module type and by the names of dynamic-network-architectures'
encoder (``encoder.stem`` of a residual encoder, ``encoder.stages[0]``).
"""
from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _NormBase

ALL, DECODER, NORM, FIRST_STAGE = "all", "decoder", "norm", "first_stage"
PARTS = (ALL, DECODER, NORM, FIRST_STAGE)
_NORMS = (_NormBase, nn.GroupNorm, nn.LayerNorm)


class TrainablePartError(ValueError):
    """An unknown part, or a network without the modules a part needs."""


def _first_stage(network: nn.Module) -> list[nn.Module]:
    encoder = getattr(network, "encoder", None)
    stages = getattr(encoder, "stages", None)
    if stages is None:
        raise TrainablePartError(f"{type(network).__name__} has no encoder.stages; the first-stage part needs a "
                                 f"dynamic-network-architectures U-Net.")
    return [m for m in (getattr(encoder, "stem", None), stages[0]) if m is not None]


def part_parameter_names(network: nn.Module, part: str) -> set[str]:
    """Names (as ``named_parameters`` gives them) of the parameters ``part`` trains."""
    names = {name for name, _ in network.named_parameters()}
    if part == ALL:
        return names
    if part == DECODER:
        encoder = getattr(network, "encoder", None)
        if encoder is None:
            raise TrainablePartError(f"{type(network).__name__} has no encoder; the decoder part needs a U-Net.")
        return names - {f"encoder.{name}" for name, _ in encoder.named_parameters()}
    if part == NORM:
        norms = {f"{prefix}.{name}" for prefix, module in network.named_modules() if isinstance(module, _NORMS)
                 for name, _ in module.named_parameters(recurse=False)}
        return norms | {name for name in names if name.rsplit(".", 1)[-1] == "bias"}
    if part == FIRST_STAGE:
        chosen = {id(p) for module in _first_stage(network) for p in module.parameters()}
        return {name for name, p in network.named_parameters() if id(p) in chosen}
    raise TrainablePartError(f"Unknown part {part!r}; use one of {', '.join(PARTS)}.")


def train_only(network: nn.Module, part: str) -> tuple[int, int]:
    """Freeze every parameter outside ``part``; returns (trained, frozen) parameter counts."""
    chosen = part_parameter_names(network, part)
    trained = frozen = 0
    for name, parameter in network.named_parameters():
        keep = name in chosen
        parameter.requires_grad_(keep)
        if keep:
            trained += parameter.numel()
        else:
            frozen += parameter.numel()
    return trained, frozen
