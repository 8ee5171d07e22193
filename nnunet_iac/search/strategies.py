"""The search strategies ``nnUNet_IAC_strategy`` names: PC-DARTS (the IAC paper's, the default), progressive
operation pruning (IAC-LTH's idea), Shapley-guided pruning (the IAC authors' Shapley follow-up) and cost-aware
PC-DARTS (the architecture loss pays for expected operation cost, issue 18) and NSGA-II over discrete genotypes on
the trained supernet (a front of Dice against cost, issue 18). A variant
trainer may still name any ``SearchStrategy`` class directly."""
from __future__ import annotations

from nnunet_iac.search.cost_aware import CostAwareStrategy
from nnunet_iac.search.evolution import EvolutionStrategy
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.progressive_pruning import ProgressivePruningStrategy
from nnunet_iac.search.shapley_pruning import ShapleyPruningStrategy

STRATEGIES = {"pcdarts": PCDartsStrategy, "lth": ProgressivePruningStrategy, "shapley": ShapleyPruningStrategy,
              "cost": CostAwareStrategy, "nsga2": EvolutionStrategy}
DEFAULT_STRATEGY = "pcdarts"
