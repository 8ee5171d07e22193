"""Stage III under its own trainer name, so the remedies' integration test (tests/nnunet/test_remedies_integration.py)
gets a model folder of its own: its cells (gated) differ from the other retrain tests' and nnU-Net refuses
mixed cells in one folder."""
from nnunet_iac.nnunet.retrain_trainer import IACRetrainTrainer


class nnUNetTrainerIACRetrainRemedies(IACRetrainTrainer):
    pass
