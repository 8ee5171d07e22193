"""nnunet-iac: Implantable Adaptive Cells for trained nnU-Net models."""
from nnunet_iac.cell_topology import CellTopology, cell_width
from nnunet_iac.cells import CellOptions, implant_discrete_cells, implant_search_cells
from nnunet_iac.genotype import Genotype, GenotypeError, derive_genotype
from nnunet_iac.implant import freeze_base, implant_cells
from nnunet_iac.operations import OPERATIONS, search_space

__version__ = "0.1.0"

__all__ = [
    "CellOptions", "CellTopology", "Genotype", "GenotypeError", "OPERATIONS", "cell_width",
    "derive_genotype", "freeze_base", "implant_cells", "implant_discrete_cells", "implant_search_cells",
    "search_space",
]
