"""Stage III: ``nnUNetv2_train D CONFIG FOLD -tr nnUNetTrainerIACRetrain`` trains the searched cells in your model."""
from nnunet_iac.nnunet.retrain_trainer import IACRetrainTrainer


class nnUNetTrainerIACRetrain(IACRetrainTrainer):
    """Discrete cells from genotype.json (or nnUNet_IAC_genotype) in every skip of the frozen base."""
