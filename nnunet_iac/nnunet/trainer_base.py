"""What the search and the retrain trainer share: settings, the frozen base, atomic checkpoints.

Subclasses keep nnU-Net's fixed ``__init__`` signature and override one hook at a time; the base
model is found, checked and loaded in ``initialize`` right after nnU-Net has built the network.

Multi-GPU (``-num_gpus N``, nnU-Net's DDP): nnU-Net splits the batch over the ranks and wraps the network;
``configure_optimizers`` tells DDP to synchronise only what the optimizer steps (``ddp_parameters``), every
rank draws its own batches (``seed_epoch`` per rank), and only rank 0 writes files (nnU-Net's rule for its
checkpoints, kept for every file of ours).
"""
from __future__ import annotations

from os.path import join
from pathlib import Path

import torch
from nnunetv2.paths import nnUNet_results
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.nnunet.base_model import (check_base_matches, default_base_folder, load_base_weights,
                                   read_base_checkpoint, resolve_base_checkpoint)
from nnunet_iac.network.base_policy import trainable_base_children
from nnunet_iac.nnunet.checkpointing import IAC_KEY, atomic_torch_save, nnunet_checkpoint, safe_load, unwrap
from nnunet_iac.nnunet.ddp_parameters import leave_out_of_ddp
from nnunet_iac.common.determinism import seed_epoch
from nnunet_iac.network.implant import cell_parameters, count_parameters, freeze_base, trainable_base_parameters
from nnunet_iac.nnunet.settings import PREFIX, IACSettings
from nnunet_iac.search.adas import AdasScheduler
from nnunet_iac.search.architecture_step import stepped_parameters
from nnunet_iac.search.plots import plot_probe
from nnunet_iac.search.cell_probing import module_gains
from nnunet_iac.search.probe_history import PROBE_PLOT, ProbeRecorder, describe_probe

SETTINGS_FILE = "iac_settings.json"


class MultiProcessNotSupported(RuntimeError):
    """nnU-Net's -num_gpus > 1 (DDP) with a setting that cannot run under it (see ``SearchStrategy.ddp_refusal``)."""


class OutputFolderError(OSError):
    """nnU-Net cannot create or write the trainer's output folder."""


class IACTrainerBase(nnUNetTrainer):
    #: the IACSettings field that, when 0, skips nnU-Net's final validation of this trainer
    validation_setting = ""
    #: a variant's setting defaults, by setting name (``{"epochs": 50}``); merged along the class hierarchy,
    #: a subclass's entries over its parents', and ``nnUNet_IAC_*`` variables over all of them
    iac_defaults: dict = {}

    @classmethod
    def settings_defaults(cls) -> dict:
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("iac_defaults", {}))
        return merged

    @classmethod
    def read_settings(cls) -> IACSettings:
        """The settings in effect for this trainer class (a class method: nnU-Net builds networks from the class)."""
        return IACSettings.from_env(defaults=cls.settings_defaults(), source=f"{cls.__name__}.iac_defaults")

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        try:
            super().__init__(plans, configuration, fold, dataset_json, device)
        except OSError as e:
            raise OutputFolderError(
                f"nnU-Net cannot write the output folder of {self.__class__.__name__} "
                f"({getattr(e, 'filename', None) or e}): {e.strerror or e}. Point nnUNet_results at a writable "
                f"folder (it is read as {nnUNet_results}).") from e
        self.iac_settings = self.read_settings()
        self.num_epochs = self.iac_settings.epochs
        self.num_iterations_per_epoch = self.iac_settings.iterations_per_epoch
        self.num_val_iterations_per_epoch = self.iac_settings.val_iterations_per_epoch
        self.save_every = self.iac_settings.save_every
        self.base_checkpoint = None

    def _do_i_compile(self):
        return False

    def configure_optimizers(self):
        """nnU-Net calls this once the network is built and wraps it in DDP right after (``-num_gpus N``): the
        subclass's ``make_optimizers``, and DDP told to leave out what that optimizer does not step."""
        optimizer, scheduler = self.make_optimizers()
        if self.is_ddp:
            ignored = leave_out_of_ddp(unwrap(self.network), optimizer)
            self.print_to_log_file(f"DDP synchronises the {len(stepped_parameters(optimizer))} parameter tensors the "
                                   f"optimizer steps and leaves out {len(ignored)} (the frozen base, alpha/beta).")
        return optimizer, scheduler

    def make_optimizers(self):
        """The optimizer and learning-rate schedule of what this trainer trains (nnU-Net's pair)."""
        raise NotImplementedError

    def initialize(self):
        torch.manual_seed(self.iac_settings.seed)
        super().initialize()
        self.load_base()

    @property
    def base_policy(self) -> str:
        """Which base weights train besides the cells (``base_policy``); the search keeps the base frozen."""
        return "frozen"

    def load_base(self) -> None:
        folder = default_base_folder(nnUNet_results, self.plans_manager.dataset_name,
                                     self.plans_manager.plans_name, self.configuration_name)
        path = resolve_base_checkpoint(folder, self.fold, self.iac_settings.base)
        checkpoint = read_base_checkpoint(path)
        check_base_matches(checkpoint, path, self.plans_manager.plans, self.configuration_name, self.dataset_json)
        network = unwrap(self.network)
        load_base_weights(network, checkpoint["network_weights"], path)
        trainable = trainable_base_children(network, self.base_policy)
        freeze_base(network, trainable)
        self.base_checkpoint = path
        unfrozen = (f"the base's {', '.join(trainable)} train too "
                    f"({count_parameters(trainable_base_parameters(network, trainable)):,} parameters)") if trainable \
            else "the base is frozen"
        self.print_to_log_file(f"Loaded the base from {path} ({self.base_policy}): cells train "
                               f"{count_parameters(cell_parameters(network)):,} parameters, {unfrozen}.")

    def on_train_epoch_start(self):
        seed_epoch(self.iac_settings.seed, self.current_epoch, self.local_rank)
        super().on_train_epoch_start()

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            atomic_write_json(join(self.output_folder, SETTINGS_FILE), self.settings_record())

    def probe_cells_after_epoch(self) -> None:
        """Issue 17: the stable rank of every cell convolution every nnUNet_IAC_probe_every epochs, with the
        Adas learning rates when the cells train with Adas, into probe_history.json (search/probe_history.py)."""
        if self.local_rank != 0:
            return
        adas = self.lr_scheduler if isinstance(self.lr_scheduler, AdasScheduler) else None
        recorder = ProbeRecorder(Path(self.output_folder), self.iac_settings.probe_every)
        row = recorder.record(self.current_epoch, unwrap(self.network), adas.rates() if adas else None)
        if row is not None:
            if adas is not None:  # the next epoch's Adas step sees these very weights: no second probe
                adas.offer(self.current_epoch + 1, module_gains(recorder.probes))
            self.print_to_log_file(f"IAC probe, epoch {self.current_epoch} ({row['seconds']:.1f} s): "
                                   f"{describe_probe(row)}")

    def plot_probes(self) -> None:
        """probe.png from probe_history.json, when anything was probed."""
        rows = ProbeRecorder(Path(self.output_folder), self.iac_settings.probe_every).rows() \
            if self.local_rank == 0 else []
        if rows:
            plot_probe(rows, Path(self.output_folder) / PROBE_PLOT)

    def settings_record(self) -> dict:
        """What ``iac_settings.json`` holds: every setting in effect and the base checkpoint used."""
        return {**self.iac_settings.to_dict(), "base_checkpoint": str(self.base_checkpoint)}

    def perform_actual_validation(self, save_probabilities: bool = False):
        if self.validation_setting and not getattr(self.iac_settings, self.validation_setting):
            self.print_to_log_file(f"Skipping nnU-Net's final validation ({PREFIX}{self.validation_setting}=0); "
                                   f"unset it and run nnUNetv2_train ... --val to validate later.")
            return
        super().perform_actual_validation(save_probabilities)

    def iac_state(self) -> dict:
        """Extra state saved with every checkpoint under the 'iac' key."""
        return {"settings": self.iac_settings.to_dict()}

    def restore_iac_state(self, state: dict) -> None:
        """Counterpart of ``iac_state`` when a training is continued."""

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0:
            return
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        atomic_torch_save(nnunet_checkpoint(self, self.iac_state()), filename)

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        """Checked weights-only first; nnU-Net's loader (which needs a file name) then reads it again."""
        checkpoint = filename_or_checkpoint
        if not isinstance(checkpoint, dict):
            checkpoint = safe_load(checkpoint)
        super().load_checkpoint(filename_or_checkpoint)
        self.restore_iac_state(checkpoint.get(IAC_KEY) or {})
