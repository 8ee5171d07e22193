"""IAC trainers that fail on purpose, for the reliability tests.

``nnUNetTrainerIACSearchKilled`` / ``nnUNetTrainerIACRetrainKilled`` die (like a killed job, no clean-up) right after the epoch given by
``IAC_TEST_KILL_AFTER_EPOCH`` has been checkpointed; without the variable it is the normal search.
``nnUNetTrainerIACSearchNaN`` feeds NaN images from the epoch given by ``IAC_TEST_NAN_FROM_EPOCH`` on.
"""
import os

import torch

from nnunet_iac.retrain_trainer import IACRetrainTrainer
from nnunet_iac.search_trainer import IACSearchTrainer


class KilledAfterEpoch:
    def on_epoch_end(self):
        super().on_epoch_end()
        kill_after = os.environ.get("IAC_TEST_KILL_AFTER_EPOCH")
        if kill_after is not None and self.current_epoch == int(kill_after) + 1:
            os._exit(3)


class nnUNetTrainerIACSearchKilled(KilledAfterEpoch, IACSearchTrainer):
    pass


class nnUNetTrainerIACRetrainKilled(KilledAfterEpoch, IACRetrainTrainer):
    pass


class nnUNetTrainerIACSearchNaN(IACSearchTrainer):
    def train_step(self, batch: dict) -> dict:
        if self.current_epoch >= int(os.environ["IAC_TEST_NAN_FROM_EPOCH"]):
            batch = {**batch, "data": torch.full_like(batch["data"], float("nan"))}
        return super().train_step(batch)
