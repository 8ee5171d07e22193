"""IAC trainers that fail on purpose, for the reliability tests.

``nnUNetTrainerIACSearchKilled`` / ``nnUNetTrainerIACRetrainKilled`` die (like a killed job, no clean-up) right after the epoch given by
``IAC_TEST_KILL_AFTER_EPOCH`` has been checkpointed; without the variable it is the normal search.
``nnUNetTrainerIACSearchNaN`` feeds NaN images from the epoch given by ``IAC_TEST_NAN_FROM_EPOCH`` on.
``nnUNetTrainerIACSearchDiskFull`` / ``nnUNetTrainerIACRetrainDiskFull`` make file writes fail half-way from a
given epoch on (``DiskFullInEpoch``); ``nnUNetTrainerIACSearchFixedAlpha`` never moves alpha/beta.
"""
import os
import resource
import shutil
import signal

import torch

from nnunet_iac.nnunet.retrain_trainer import IACRetrainTrainer
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer


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


class DiskFullInEpoch:
    """From the end of epoch ``IAC_TEST_DISK_FULL_EPOCH`` on, no file of the process may grow beyond half the size
    that ``IAC_TEST_DISK_FULL_FILE`` (a file of the output folder) has then: its next version fails half-way with
    EFBIG, as on a full disk. The output folder's files are copied to ``IAC_TEST_SNAPSHOT`` just before."""

    def on_epoch_end(self):
        if self.current_epoch == int(os.environ["IAC_TEST_DISK_FULL_EPOCH"]):
            shutil.copytree(self.output_folder, os.environ["IAC_TEST_SNAPSHOT"])
            limit = os.path.getsize(os.path.join(self.output_folder, os.environ["IAC_TEST_DISK_FULL_FILE"])) // 2
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        super().on_epoch_end()


class nnUNetTrainerIACSearchDiskFull(DiskFullInEpoch, IACSearchTrainer):
    pass


class nnUNetTrainerIACRetrainDiskFull(DiskFullInEpoch, IACRetrainTrainer):
    pass


class nnUNetTrainerIACSearchFixedAlpha(IACSearchTrainer):
    """The search with an architecture learning rate of 0: the genotype never changes, so the early stop on a
    stable genotype (nnUNet_IAC_stable_epochs) is reached after a known number of epochs."""

    def initialize(self):
        super().initialize()
        for group in self.strategy.optimizer.param_groups:
            group["lr"] = 0.0
