"""Layer 4: the glue to nnU-Net (trainers, settings, base-model lookup, checkpoints, data loaders).
The classes nnU-Net finds by name live in ``nnunet_iac.trainers`` and only subclass these."""
