"""Layer 5: ``nnunet-iac select``: candidate genotypes, one short retrain trial each, the choice on
val_search only."""
