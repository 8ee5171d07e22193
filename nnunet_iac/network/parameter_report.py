"""How many parameters cells add to a base network, per decoder level."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import count_parameters


@dataclass(frozen=True)
class LevelParameters:
    stage: int
    skip_channels: int
    width: int
    search_cell: int
    discrete_cell: int


@dataclass(frozen=True)
class ParameterReport:
    base: int
    levels: tuple[LevelParameters, ...]
    architecture: int

    @property
    def discrete_total(self) -> int:
        return sum(level.discrete_cell for level in self.levels)

    @property
    def search_total(self) -> int:
        return sum(level.search_cell for level in self.levels) + self.architecture

    def markdown(self) -> str:
        rows = ["| decoder stage | skip channels | cell width | search cell | discrete cell |",
                "|---|---|---|---|---|"]
        for lv in self.levels:
            rows.append(f"| {lv.stage} | {lv.skip_channels} | {lv.width} | {lv.search_cell:,} | "
                        f"{lv.discrete_cell:,} |")
        rows.append(f"| all | | | {self.search_total:,} (incl. {self.architecture} alpha/beta) | "
                    f"{self.discrete_total:,} |")
        rows.append("")
        rows.append(f"Base network: {self.base:,} parameters. Discrete cells add "
                    f"{self.discrete_total:,} ({100 * self.discrete_total / self.base:.2f} % of the base); "
                    f"the search supernet adds {self.search_total:,} "
                    f"({100 * self.search_total / self.base:.2f} %).")
        return "\n".join(rows)


def parameter_report(base: nn.Module, genotype: Genotype, options: CellOptions = CellOptions()) -> ParameterReport:
    searched = implant_search_cells(copy.deepcopy(base), options)
    discrete = implant_discrete_cells(copy.deepcopy(base), genotype, options)
    skips = base.encoder.output_channels
    levels = tuple(
        LevelParameters(s, skips[-(s + 2)], options.width(skips[-(s + 2)]),
                        count_parameters(search_cell.parameters()), count_parameters(discrete_cell.parameters()))
        for s, (search_cell, discrete_cell) in enumerate(zip(searched.decoder.iac_cells, discrete.decoder.iac_cells))
    )
    return ParameterReport(count_parameters(base.parameters()), levels,
                           count_parameters(searched.decoder.iac_architecture.parameters()))
