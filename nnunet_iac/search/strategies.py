"""The search strategies ``nnUNet_IAC_strategy`` names: PC-DARTS (the IAC paper's, the default) and progressive
operation pruning (IAC-LTH's idea). A variant trainer may still name any ``SearchStrategy`` class directly."""
from __future__ import annotations

from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.progressive_pruning import ProgressivePruningStrategy

STRATEGIES = {"pcdarts": PCDartsStrategy, "lth": ProgressivePruningStrategy}
DEFAULT_STRATEGY = "pcdarts"
