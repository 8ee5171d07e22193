"""Put a cell into every skip connection of a trained dynamic-network-architectures U-Net.

The decoder of PlainConvUNet and ResidualEncoderUNet (``UNetDecoder``) concatenates, at each stage,
the upsampled features *first* and the encoder skip second, and its first convolution was trained on
exactly that. The implanted decoder keeps that concatenation and either adds the cell output to it
(``residual``; by default the cell's last projection starts at zero, so the network starts as the base;
see ``cell_init`` for the other starts) or replaces it by the cell output (``replace``, the paper's form).

The implanted decoder re-uses the base decoder's own submodules under their own names and adds
``iac_cells`` (and, while searching, ``iac_architecture``), so every state_dict key of the base is
unchanged and a base checkpoint loads into it strictly once the new keys are accounted for.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from torch import nn

from nnunet_iac.cells.branching import neighbour_features
from nnunet_iac.cells.levels import ALL, LevelsError, resolve_levels
from nnunet_iac.cells.output_init import initialize_output

MODES = ("residual", "replace")
CELLS = "iac_cells"
ARCHITECTURE = "iac_architecture"

CellFactory = Callable[[int, int, int], nn.Module]
"""(decoder stage, skip channels, upsampled channels) -> cell. Stage 0 is the lowest resolution."""


class ImplantError(TypeError):
    """The network cannot take cells (unsupported architecture or already implanted)."""


class ImplantedUNetDecoder(UNetDecoder):
    """``iac_cells[i]`` sits at decoder stage ``iac_cell_levels[i]``; a stage without a cell concatenates as the
    base does."""

    def __init__(self, decoder: UNetDecoder, cells: list[nn.Module], mode: str,
                 architecture: nn.Module | None = None, cell_levels: tuple[int, ...] | None = None):
        nn.Module.__init__(self)
        if mode not in MODES:
            raise ValueError(f"Unknown implant mode {mode!r}; use one of {', '.join(MODES)}.")
        cell_levels = tuple(range(len(decoder.stages))) if cell_levels is None else tuple(cell_levels)
        if len(cells) != len(cell_levels) or not set(cell_levels) <= set(range(len(decoder.stages))):
            raise ValueError(f"Got {len(cells)} cells for levels {cell_levels} of {len(decoder.stages)} decoder "
                             f"stages.")
        for name, module in decoder.named_children():
            self.add_module(name, module)
        self.deep_supervision = decoder.deep_supervision
        self.num_classes = decoder.num_classes
        self.iac_mode = mode
        self.iac_base_frozen = False
        self.iac_trainable_base = frozenset()
        self.iac_cell_levels = cell_levels
        self._cell_of_stage = {stage: i for i, stage in enumerate(cell_levels)}
        self.add_module(CELLS, nn.ModuleList(cells))
        self.add_module(ARCHITECTURE, architecture)

    def merge(self, stage: int, up: torch.Tensor, skips: list[torch.Tensor], architecture,
              branch_weights: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder stage's input: the base's concatenation, plus (or replaced by) the cell's output. A cell that
        takes branches also gets the neighbouring levels' encoder features (``cells.branching``)."""
        skip = skips[-(stage + 2)]
        index = self._cell_of_stage.get(stage)
        if index is None:
            return torch.cat((up, skip), 1)
        cell = self.iac_cells[index]
        if getattr(cell, "takes_branches", False):  # a cell without branches need not know of them
            cell_out = cell(skip, up, architecture, neighbour_features(skips, stage), branch_weights)
        else:
            cell_out = cell(skip, up, architecture)
        if self.iac_mode == "replace":
            return cell_out
        return torch.cat((up, skip), 1) + cell_out

    def forward(self, skips):
        architecture = self.iac_architecture() if self.iac_architecture is not None else None
        branch_weights = self.iac_architecture.branch_weights() if self.iac_architecture is not None else None
        lres_input = skips[-1]
        seg_outputs = []
        last = len(self.stages) - 1
        for s in range(len(self.stages)):
            x = self.merge(s, self.transpconvs[s](lres_input), skips, architecture, branch_weights)
            x = self.stages[s](x)
            if self.deep_supervision or s == last:
                seg_outputs.append(self.seg_layers[s](x))
            lres_input = x
        seg_outputs = seg_outputs[::-1]
        return seg_outputs if self.deep_supervision else seg_outputs[0]

    def compute_conv_feature_map_size(self, input_size):
        output = super().compute_conv_feature_map_size(input_size)
        skip_sizes = []
        for stride in self.encoder.strides[:-1]:
            input_size = [i // j for i, j in zip(input_size, stride)]
            skip_sizes.append(input_size)
        for stage, cell in zip(self.iac_cell_levels, self.iac_cells):
            output += cell.feature_map_size(skip_sizes[-(stage + 1)])
        return output

    def named_base_children(self) -> Iterator[tuple[str, nn.Module]]:
        for name, module in self.named_children():
            if name not in (CELLS, ARCHITECTURE):
                yield name, module

    def train(self, mode: bool = True):
        """A frozen base stays in eval mode, so norm statistics and dropout of the base never change; base
        children left trainable (``iac_trainable_base``) follow ``mode`` as in nnU-Net's own fine-tuning."""
        super().train(mode)
        if self.iac_base_frozen:
            for name, module in self.named_base_children():
                if name not in self.iac_trainable_base:
                    module.eval()
        return self


def base_decoder(network: nn.Module) -> UNetDecoder:
    """The decoder cells go into; refuses networks that cannot take them."""
    decoder = getattr(network, "decoder", None)
    if isinstance(decoder, ImplantedUNetDecoder):
        raise ImplantError("This network already has cells implanted; implant into the base network.")
    if not isinstance(decoder, UNetDecoder) or not hasattr(network, "encoder"):
        raise ImplantError(
            f"Cannot implant cells into {type(network).__name__}: nnunet-iac supports networks with a "
            f"dynamic-network-architectures UNetDecoder (PlainConvUNet, ResidualEncoderUNet).")
    return decoder


def implant_cells(network: nn.Module, make_cell: CellFactory, mode: str = "residual",
                  architecture: nn.Module | None = None, init: str = "zero", levels: str = ALL) -> nn.Module:
    """Replace ``network.decoder`` by an implanted decoder with one cell per stage ``levels`` selects (all by
    default; ``nnunet_iac.cells.levels``); returns ``network``. ``init`` sets how each residual cell's output
    starts (``nnunet_iac.cells.output_init``)."""
    decoder = base_decoder(network)
    channels = decoder.encoder.output_channels
    try:
        stages = resolve_levels(levels, len(decoder.stages))
    except LevelsError as e:
        raise ImplantError(f"Cannot implant cells: {e} Set nnUNet_IAC_levels to levels of this network, or "
                           f"'all'.") from None
    cells = []
    for s in stages:
        skip_channels = channels[-(s + 2)]
        cell = make_cell(s, skip_channels, skip_channels)
        initialize_output(cell, init, mode)
        cells.append(cell)
    network.decoder = ImplantedUNetDecoder(decoder, cells, mode, architecture, stages)
    return network


def implanted_decoder(network: nn.Module) -> ImplantedUNetDecoder:
    decoder = getattr(network, "decoder", None)
    if not isinstance(decoder, ImplantedUNetDecoder):
        raise ImplantError(f"{type(network).__name__} has no implanted cells.")
    return decoder


def mask_operations(network: nn.Module, mask) -> None:
    """Leave on each edge only the operations ``mask`` (edges x operations) keeps: weight 0 for the others in
    alpha's softmax, and each cell computes only what is left (how a pruning search shrinks its supernet)."""
    decoder = implanted_decoder(network)
    decoder.iac_architecture.set_operation_mask(mask)
    for cell in decoder.iac_cells:
        cell.apply_operation_mask(mask)


@contextmanager
def cells_at(network: nn.Module, levels: Iterable[int]) -> Iterator[None]:
    """Within the block only the cells at ``levels`` act; every other level concatenates as the base does, as it
    would in a network implanted at ``levels`` alone (how the evolution scores a subset of levels on the supernet)."""
    decoder = implanted_decoder(network)
    levels = set(levels)
    unknown = levels - set(decoder.iac_cell_levels)
    if unknown:
        raise ValueError(f"levels {sorted(unknown)} have no cell; this network has cells at {decoder.iac_cell_levels}.")
    before = decoder._cell_of_stage
    decoder._cell_of_stage = {stage: i for stage, i in before.items() if stage in levels}
    try:
        yield
    finally:
        decoder._cell_of_stage = before


def cell_parameters(network: nn.Module) -> list[nn.Parameter]:
    return list(implanted_decoder(network).iac_cells.parameters())


def architecture_parameters(network: nn.Module) -> list[nn.Parameter]:
    architecture = implanted_decoder(network).iac_architecture
    return [] if architecture is None else list(architecture.parameters())


def base_parameters(network: nn.Module) -> list[nn.Parameter]:
    added = {id(p) for p in cell_parameters(network) + architecture_parameters(network)}
    return [p for p in network.parameters() if id(p) not in added]


def is_base_key(key: str) -> bool:
    """Whether a state_dict key belongs to the base network (not to cells or alpha/beta)."""
    return f"{CELLS}." not in key and f"{ARCHITECTURE}." not in key


def trainable_base_parameters(network: nn.Module, trainable_children: Iterable[str] = ()) -> list[nn.Parameter]:
    """Base parameters inside the implanted decoder's children named in ``trainable_children``."""
    names = set(trainable_children)
    return [p for name, module in implanted_decoder(network).named_base_children() if name in names
            for p in module.parameters()]


def freeze_base(network: nn.Module, trainable_children: Iterable[str] = ()) -> nn.Module:
    """No gradients for the base and base always in eval mode; only cells (and alpha/beta) learn.

    ``trainable_children`` names children of the implanted decoder (``stages``, ``transpconvs``,
    ``seg_layers``, ``encoder``; see ``base_policy``) that stay trainable and in train mode instead."""
    trainable_children = frozenset(trainable_children)
    decoder = implanted_decoder(network)
    unknown = trainable_children - {name for name, _ in decoder.named_base_children()}
    if unknown:
        raise ValueError(f"freeze_base: the decoder has no base children {sorted(unknown)}.")
    trainable = {id(p) for p in trainable_base_parameters(network, trainable_children)}
    for p in base_parameters(network):
        p.requires_grad_(id(p) in trainable)
    decoder.iac_base_frozen = True
    decoder.iac_trainable_base = trainable_children
    network.train(network.training)
    return network


def count_parameters(parameters) -> int:
    return int(sum(np.prod(p.shape, dtype=np.int64) for p in parameters))
