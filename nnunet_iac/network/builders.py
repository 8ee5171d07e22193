"""Implant search cells (a supernet) or discrete cells (from a genotype) into a base network."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nnunet_iac.cells.architecture_parameters import ArchitectureParameters
from nnunet_iac.cells.branching import OFF, ON, check_branching, neighbour_channels
from nnunet_iac.cells.output_init import check_init
from nnunet_iac.cells.topology import CellTopology, cell_width
from nnunet_iac.cells.discrete_cell import DiscreteCell
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import ImplantError, base_decoder, implant_cells
from nnunet_iac.cells.layer_spec import LayerSpec
from nnunet_iac.cells.levels import ALL
from nnunet_iac.cells.operations import search_space
from nnunet_iac.cells.search_cell import SearchCell


#: the name plans.json files written before K had one name everywhere (issue 15) use for ``k``
LEGACY_K = "partial_k"


@dataclass(frozen=True)
class CellOptions:
    """What shapes the cells besides the genotype; searched and retrained cells must use the same k, width
    and mode. ``k`` is PC-DARTS' K (1/K of a cell's channels go through the mixed operations; the same name as
    the setting ``nnUNet_IAC_k`` and the genotype's ``cell_options``). ``init`` is how a residual cell's output
    starts (``output_init``); ``gate`` adds a parameter. ``levels`` says which decoder levels get a cell
    (``cells.levels``: ``all``, or e.g. ``0,1``). ``branching`` ``on`` gives the search cells the neighbouring
    levels' encoder features and the search a choice of how to merge them (``cells.branching``)."""

    k: int = 4
    width_divisor: int = 4
    mode: str = "residual"
    init: str = "zero"
    levels: str = ALL
    branching: str = OFF

    def __post_init__(self):
        check_init(self.init, self.mode)
        check_branching(self.branching)

    def width(self, skip_channels: int) -> int:
        return cell_width(skip_channels, self.k, self.width_divisor)

    @classmethod
    def from_dict(cls, data: dict) -> "CellOptions":
        """Options as plans.json stores them (``asdict``), also from plans that name K ``partial_k``."""
        data = dict(data)
        if LEGACY_K in data:
            data.setdefault("k", data.pop(LEGACY_K))
        return cls(**data)


def implant_search_cells(network: nn.Module, options: CellOptions = CellOptions(),
                         topology: CellTopology = CellTopology(),
                         operation_names: tuple[str, ...] | None = None) -> nn.Module:
    """The supernet: one shared ArchitectureParameters, one SearchCell with its own weights per level."""
    operation_names = tuple(operation_names or search_space())
    encoder = base_decoder(network).encoder
    spec = LayerSpec.from_encoder(encoder)
    branching = options.branching == ON
    architecture = ArchitectureParameters(topology, len(operation_names), branching)

    def make_cell(stage: int, skip_channels: int, up_channels: int) -> SearchCell:
        branches = neighbour_channels(encoder.output_channels, stage) if branching else None
        return SearchCell(spec, skip_channels, up_channels, options.width(skip_channels), topology,
                          operation_names, options.k, branches)

    return implant_cells(network, make_cell, options.mode, architecture, options.init, options.levels)


def implant_discrete_cells(network: nn.Module, genotype: Genotype,
                           options: CellOptions = CellOptions()) -> nn.Module:
    if genotype.branches and options.branching != ON:
        raise ImplantError(f"The genotype takes branches from neighbouring levels ({dict(genotype.branches)}), but the "
                           f"cell options say branching={options.branching!r}; a genotype with branches comes from a "
                           f"search with nnUNet_IAC_branching=on, whose genotype.json records it. Retrain from that "
                           f"genotype.json unchanged.")
    encoder = base_decoder(network).encoder
    spec = LayerSpec.from_encoder(encoder)

    def make_cell(stage: int, skip_channels: int, up_channels: int) -> DiscreteCell:
        return DiscreteCell(spec, skip_channels, up_channels, options.width(skip_channels), genotype,
                            neighbour_channels(encoder.output_channels, stage) if genotype.branches else None)

    return implant_cells(network, make_cell, options.mode, init=options.init, levels=options.levels)
