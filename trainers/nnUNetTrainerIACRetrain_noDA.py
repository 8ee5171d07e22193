"""Stage III without data augmentation: ``-tr nnUNetTrainerIACRetrain_noDA`` after ``nnUNetTrainerIACSearch_noDA``.

Like ``nnUNetTrainerIACSearch_noDA``, the IAC paper's recipe (no augmentation in any stage) with nnU-Net's own
``nnUNetTrainerNoDA`` hooks; by default it retrains the genotype of the no-augmentation search of the fold.
"""
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA

from nnunet_iac.trainers.nnUNetTrainerIACRetrain import nnUNetTrainerIACRetrain


class nnUNetTrainerIACRetrain_noDA(nnUNetTrainerIACRetrain, nnUNetTrainerNoDA):
    """nnUNetTrainerIACRetrain with nnUNetTrainerNoDA's transforms and mirroring."""

    search_trainer_name = "nnUNetTrainerIACSearch_noDA"
