"""The IAC trainers under nnU-Net's DDP path on the CPU (gloo), for the two-process tests (issue 39).

nnU-Net's DDP path is hard-wired to CUDA and NCCL. ``CPUDDP`` replaces exactly these, nothing else:

- ``__init__``: nnU-Net makes ``cuda:<rank>`` the device of a DDP rank and a CUDA GradScaler; here the CPU and
  no scaler (what nnU-Net has on the CPU in one process);
- ``initialize``: nnU-Net wraps ``DDP(network, device_ids=[rank])``; ``device_ids`` are for GPU modules only,
  so the wrap is ``DDP(network)`` here (everything else it passes, none today, is kept).

The rest of nnU-Net's DDP path runs as it is: batch size and oversampling per rank, the SyncBatchNorm
conversion, the DDP-aware Dice loss (``all_gather`` of its terms), the gathering of losses and pseudo-Dice,
its barriers and rank-0-only checkpoints. ``tests/ddp_harness.py`` (nnU-Net's ``run_ddp`` with gloo) runs them.

``RanksRecorded`` records, per rank, every file the project's writers finish (``os.replace``, the end of every
atomic write, and matplotlib's ``savefig``) and, at the end, dumps the rank's network weights and genotype to
``IAC_TEST_DDP_DUMP``; ``IAC_TEST_DDP_KILL_AFTER_EPOCH`` ends every rank after that epoch is checkpointed.
"""
import contextlib
import json
import os
from pathlib import Path

import matplotlib.figure
import torch
import torch.distributed as dist
from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as nnunet_trainer_module
from torch.nn.parallel import DistributedDataParallel

from nnunet_iac.nnunet.checkpointing import unwrap
from nnunet_iac.nnunet.retrain_trainer import IACRetrainTrainer
from nnunet_iac.nnunet.search_trainer import IACSearchTrainer


def _ddp_on_cpu(module, device_ids=None, **kwargs):
    return DistributedDataParallel(module, **kwargs)


class CPUDDP:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.device = torch.device("cpu")
        self.grad_scaler = None

    def initialize(self):
        original = nnunet_trainer_module.DDP
        nnunet_trainer_module.DDP = _ddp_on_cpu
        try:
            super().initialize()
        finally:
            nnunet_trainer_module.DDP = original


@contextlib.contextmanager
def _recording(written: list):
    replace, savefig = os.replace, matplotlib.figure.Figure.savefig

    def recorded_replace(src, dst, *args, **kwargs):
        written.append(str(dst))
        return replace(src, dst, *args, **kwargs)

    def recorded_savefig(figure, fname, *args, **kwargs):
        written.append(str(fname))
        return savefig(figure, fname, *args, **kwargs)

    os.replace, matplotlib.figure.Figure.savefig = recorded_replace, recorded_savefig
    try:
        yield
    finally:
        os.replace, matplotlib.figure.Figure.savefig = replace, savefig


class RanksRecorded:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        self.files_written = []
        self._recorder = contextlib.ExitStack()
        self._recorder.enter_context(_recording(self.files_written))
        super().__init__(plans, configuration, fold, dataset_json, device)

    def on_epoch_end(self):
        super().on_epoch_end()
        kill_after = os.environ.get("IAC_TEST_DDP_KILL_AFTER_EPOCH")
        if kill_after is not None and self.current_epoch == int(kill_after) + 1:
            dist.barrier()  # rank 0 has written the checkpoint of the epoch
            self.dump()
            os._exit(3)

    def on_train_end(self):
        super().on_train_end()
        self.dump()

    def dump(self) -> None:
        self._recorder.close()
        folder = Path(os.environ["IAC_TEST_DDP_DUMP"])
        folder.mkdir(parents=True, exist_ok=True)
        rank = dist.get_rank()
        torch.save(unwrap(self.network).state_dict(), folder / f"weights_rank{rank}.pth")
        genotype = self.current_genotype()[0].to_dict() if hasattr(self, "current_genotype") else None
        history = [row["genotype"] for row in self.history.to_list()] if hasattr(self, "history") else None
        (folder / f"rank{rank}.json").write_text(json.dumps({
            "files_written": self.files_written, "genotype": genotype, "history_genotypes": history,
            "batch_size": self.batch_size, "device": str(self.device), "is_ddp": self.is_ddp,
            "network": type(self.network).__name__}))


class nnUNetTrainerIACSearchCPUDDP(RanksRecorded, CPUDDP, IACSearchTrainer):
    pass


class nnUNetTrainerIACSearchCPUDDPResumed(RanksRecorded, CPUDDP, IACSearchTrainer):
    """The same search in its own output folder, for the --c comparison."""


class nnUNetTrainerIACRetrainCPUDDP(RanksRecorded, CPUDDP, IACRetrainTrainer):
    pass
