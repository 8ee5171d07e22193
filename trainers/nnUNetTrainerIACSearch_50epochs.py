"""A search variant the nnU-Net way (``nnUNetTrainer_250epochs``): ``-tr nnUNetTrainerIACSearch_50epochs``.

The example of how to write your own: subclass a trainer of this folder, set ``iac_defaults`` (setting names
as in docs/configuration.md, without the ``nnUNet_IAC_`` prefix), save the file in a folder on
``nnUNet_extTrainer``. ``nnUNet_IAC_*`` variables still override these defaults, and the variant's output
folder is its own; ``nnUNetTrainerIACRetrain`` finds its genotype when it is the only search of the fold.
"""
from nnunet_iac.trainers.nnUNetTrainerIACSearch import nnUNetTrainerIACSearch


class nnUNetTrainerIACSearch_50epochs(nnUNetTrainerIACSearch):
    """A quarter of the default search: 50 epochs (5 of them warm-up), stopped after 10 epochs of one genotype."""

    iac_defaults = {"epochs": 50, "warmup_epochs": 5, "stable_epochs": 10}
