"""The search strategies ``nnUNet_IAC_strategy`` names: PC-DARTS (the IAC paper's, the default), progressive
operation pruning (IAC-LTH's idea) and Shapley-guided pruning (the IAC authors' Shapley follow-up). A variant
trainer may still name any ``SearchStrategy`` class directly."""
from __future__ import annotations

from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.progressive_pruning import ProgressivePruningStrategy
from nnunet_iac.search.shapley_pruning import ShapleyPruningStrategy

STRATEGIES = {"pcdarts": PCDartsStrategy, "lth": ProgressivePruningStrategy, "shapley": ShapleyPruningStrategy}
DEFAULT_STRATEGY = "pcdarts"
