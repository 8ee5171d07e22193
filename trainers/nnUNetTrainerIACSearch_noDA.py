"""The search without data augmentation, nnU-Net's way (``nnUNetTrainerNoDA``): ``-tr nnUNetTrainerIACSearch_noDA``.

The IAC paper trains every stage without augmentation, and its gain over extra epochs of the base is a
generalisation gain that appears there (the control overfits); nnU-Net's augmentation may leave no room for it.
Use it on a base trained with ``-tr nnUNetTrainerNoDA``, and retrain with ``nnUNetTrainerIACRetrain_noDA``.
nnU-Net's own variant supplies the transforms (both search loaders, train_search and val_search, take the
trainer's training transforms) and switches mirroring off for inference as well.
"""
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA

from nnunet_iac.trainers.nnUNetTrainerIACSearch import nnUNetTrainerIACSearch


class nnUNetTrainerIACSearch_noDA(nnUNetTrainerIACSearch, nnUNetTrainerNoDA):
    """nnUNetTrainerIACSearch with nnUNetTrainerNoDA's transforms and mirroring (the MRO puts the search first,
    nnU-Net's NoDA hooks before nnUNetTrainer's)."""
