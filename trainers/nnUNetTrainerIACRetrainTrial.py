"""``nnunet-iac select`` runs this: a short Stage III of a candidate genotype on train_search, scored on val_search."""
from nnunet_iac.nnunet.trial_trainer import IACRetrainTrialTrainer


class nnUNetTrainerIACRetrainTrial(IACRetrainTrialTrainer):
    """Discrete cells of one candidate genotype, trained on the search's train_search, validated on its val_search."""
