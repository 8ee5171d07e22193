"""Stage II: ``nnUNetv2_train D CONFIG FOLD -tr nnUNetTrainerIACSearch`` searches the cell on your trained model."""
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer


class nnUNetTrainerIACSearch(IACSearchTrainer):
    """PC-DARTS search of one Implantable Adaptive Cell for every skip of the frozen base (see nnunet_iac docs)."""
