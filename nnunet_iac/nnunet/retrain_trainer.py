"""Stage III: train the discrete cells of a genotype inside the base, with nnU-Net's usual loop.

The base stays frozen (the paper), or its decoder or all of it trains too at a lower learning rate
(``nnUNet_IAC_retrain_base``, see ``base_policy``). The genotype is the search's final one, or that of
search epoch ``nnUNet_IAC_genotype_epoch`` (``genotype_choice``).

It is written into this trainer's plans (``ImplantedUNet`` with base architecture and
genotype as arch kwargs), so nnU-Net saves it in the model folder's plans.json and ``nnUNetv2_predict``
rebuilds the implanted network from plans alone. Cells start fresh (paper, Algorithm 3): the searched
cell weights act on 1/K of the channels inside mixed operations and do not fit the discrete cells.

The cells are built with the cell options the genotype records (``settings.settings_for_genotype``): K
(through the width's rounding to a multiple of K), width divisor and mode as searched, a contradicting
``nnUNet_IAC_*`` variable stops the trainer here, before anything is written; ``nnUNet_IAC_init`` may be set
for Stage III alone. A version-1 genotype, which records none, takes them from the settings as before.
``iac_settings.json`` and the checkpoints record the values in effect.

Under DDP (``-num_gpus N``) the discrete cells train through nnU-Net's DDP path like any nnU-Net network;
DDP synchronises what the optimizer steps (the cells and the base parts ``nnUNet_IAC_retrain_base`` trains)
and leaves the frozen base out (``trainer_base.configure_optimizers``).
"""
from __future__ import annotations

from os.path import join
from pathlib import Path

import torch
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_iac.network.base_policy import trainable_base_children
from nnunet_iac.nnunet.checkpointing import unwrap
from nnunet_iac.network.implant import cell_parameters, trainable_base_parameters
from nnunet_iac.network.implanted_network import base_architecture_of
from nnunet_iac.search.adas import adas_for_cells
from nnunet_iac.search.optimizers import retrain_optimizer
from nnunet_iac.search.plots import plot_signal
from nnunet_iac.nnunet.retrain_setup import (check_genotype_fits, check_no_conflicting_fold, find_search_genotype,
                                      load_retrain_genotype, plans_with_cells)
from nnunet_iac.nnunet.settings import settings_for_genotype
from nnunet_iac.search.signal_history import SIGNAL_HISTORY_FILE, load_signal_rows, record_signal_epoch
from nnunet_iac.search.signal_monitor import CellSignalMonitor, describe_signal
from nnunet_iac.nnunet.trainer_base import IACTrainerBase


SIGNAL_PLOT = "signal.png"


class IACRetrainTrainer(IACTrainerBase):
    validation_setting = "retrain_validation"
    #: whose search's genotype this retrain takes by default (``retrain_setup.find_search_genotype``)
    search_trainer_name = "nnUNetTrainerIACSearch"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        settings = self.read_settings()
        # with nnUNet_IAC_genotype set, the searches of the fold are not looked at (several would be ambiguous)
        default = None if settings.genotype else find_search_genotype(
            str(nnUNet_results), plans["dataset_name"], plans["plans_name"], configuration, fold,
            self.search_trainer_name)
        genotype, self.genotype_source = load_retrain_genotype(default, settings.genotype, settings.genotype_epoch)
        settings = settings_for_genotype(settings, genotype, str(self.genotype_source))
        resolved = PlansManager(plans).get_configuration(configuration)
        check_genotype_fits(genotype, self.genotype_source, base_architecture_of(resolved.configuration["architecture"]),
                            resolved.patch_size)
        plans = plans_with_cells(plans, configuration, genotype, settings.cell_options)
        model_folder = Path(str(nnUNet_results)) / plans["dataset_name"] / \
            f"{self.__class__.__name__}__{plans['plans_name']}__{configuration}"
        check_no_conflicting_fold(model_folder, configuration, plans["configurations"][configuration]["architecture"],
                                  fold)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.iac_settings = settings  # the base class read the environment alone; these hold the genotype's options
        self.genotype = genotype
        self.signal_monitor = None

    @property
    def base_policy(self) -> str:
        return self.iac_settings.retrain_base

    def make_optimizers(self):
        """The cell weights, plus the base weights nnUNet_IAC_retrain_base unfreezes as a second group, with
        nnUNet_IAC_retrain_optimizer (see nnunet_iac.search.optimizers). nnU-Net calls this before the base is loaded
        and frozen, so the base group is chosen by the policy, not by requires_grad."""
        network = unwrap(self.network)
        base = trainable_base_parameters(network, trainable_base_children(network, self.base_policy))
        settings = self.iac_settings
        if settings.retrain_optimizer == "adas":
            return adas_for_cells(network, settings.retrain_lr or settings.adas_lr, settings.adas_beta,
                                  settings.adas_zeta, base, settings.retrain_base_lr)
        return retrain_optimizer(settings.retrain_optimizer, cell_parameters(network), self.initial_lr,
                                 self.weight_decay, self.num_epochs, settings.retrain_lr, base,
                                 settings.retrain_base_lr)

    def initialize(self):
        super().initialize()
        self.signal_monitor = CellSignalMonitor(unwrap(self.network))

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.signal_monitor.reset()

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's step; its gradients stay in ``.grad`` until the next step, so the monitor reads them after."""
        result = super().train_step(batch)
        self.signal_monitor.observe_cells()
        return result

    def on_epoch_end(self):
        """The epoch's projection SNR and norms to the log and signal_history.json (nnU-Net's logger takes
        only its own keys), before nnU-Net's own epoch end saves the checkpoint."""
        if self.local_rank == 0:
            summary = self.signal_monitor.epoch_summary()
            self.print_to_log_file(f"IAC retrain epoch {self.current_epoch}: {describe_signal(summary)}")
            record_signal_epoch(Path(self.output_folder) / SIGNAL_HISTORY_FILE, self.current_epoch,
                                {**summary, "train_loss": self.logger.get_value("train_losses", step=-1),
                                 "val_loss": self.logger.get_value("val_losses", step=-1)})
        self.probe_cells_after_epoch()
        super().on_epoch_end()

    def on_train_end(self):
        super().on_train_end()
        rows = load_signal_rows(Path(self.output_folder) / SIGNAL_HISTORY_FILE) if self.local_rank == 0 else []
        if rows:
            plot_signal(rows, Path(self.output_folder) / SIGNAL_PLOT, {"train_loss": "train", "val_loss": "validation"})
        self.plot_probes()

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            self.genotype.save(join(self.output_folder, "genotype.json"))
        epoch = self.genotype.meta.get("genotype_epoch")
        chosen = f"search epoch {epoch} of {self.genotype_source}" if epoch is not None else str(self.genotype_source)
        self.print_to_log_file(f"Stage III genotype from {chosen}:\n{self.genotype.describe()}")

    def settings_record(self) -> dict:
        """Also where the cell options came from: the genotype (version 2) or the settings (version 1)."""
        origin = str(self.genotype_source) if self.genotype.cell_options is not None else \
            "nnUNet_IAC_* settings (the genotype records no cell options: version 1)"
        return {**super().settings_record(), "cell_options_from": origin}

    def iac_state(self) -> dict:
        return {**super().iac_state(), "genotype": self.genotype.to_dict(), "genotype_source": str(self.genotype_source)}
