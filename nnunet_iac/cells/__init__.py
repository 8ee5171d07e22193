"""Layer 1: the search space and the cells (operations built from the base's conv/norm/nonlin, the
searchable PC-DARTS cell, the discrete cell, alpha/beta, and the genotype that links search and retrain).
Knows nothing of networks or nnU-Net; imports only ``nnunet_iac.common``."""
