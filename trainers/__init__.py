"""nnU-Net trainer classes of nnunet-iac, found by nnU-Net through ``nnUNet_extTrainer``.

nnU-Net imports every module of this folder as a top-level module while it looks for a trainer, so
the modules here use absolute imports only and do nothing at import time. ``nnunet-iac env`` prints
the ``nnUNet_extTrainer`` value that points here, for editable and regular installs alike.
"""
