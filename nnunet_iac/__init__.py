"""nnunet-iac: Implantable Adaptive Cells for trained nnU-Net models."""
from nnunet_iac.cells.genotype import Genotype, GenotypeError, derive_genotype
from nnunet_iac.cells.operations import OPERATIONS, search_space
from nnunet_iac.cells.topology import CellTopology, cell_width
from nnunet_iac.network.builders import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.network.implant import freeze_base, implant_cells

__version__ = "0.1.0"

__all__ = [
    "CellOptions", "CellTopology", "Genotype", "GenotypeError", "OPERATIONS", "cell_width",
    "derive_genotype", "freeze_base", "implant_cells", "implant_discrete_cells", "implant_search_cells",
    "search_space",
]
