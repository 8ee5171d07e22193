"""Stage III: train the discrete cells of a genotype inside the frozen base, with nnU-Net's usual loop.

The genotype is written into this trainer's plans (``ImplantedUNet`` with base architecture and
genotype as arch kwargs), so nnU-Net saves it in the model folder's plans.json and ``nnUNetv2_predict``
rebuilds the implanted network from plans alone. Cells start fresh (paper, Algorithm 3): the searched
cell weights act on 1/K of the channels inside mixed operations and do not fit the discrete cells.
"""
from __future__ import annotations

import shutil
from os.path import join
from pathlib import Path

import torch
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_iac.checkpointing import unwrap
from nnunet_iac.implant import cell_parameters
from nnunet_iac.implanted_network import base_architecture_of
from nnunet_iac.optimizers import retrain_optimizer
from nnunet_iac.retrain_setup import (check_genotype_fits, check_no_conflicting_fold, default_genotype_path,
                                      load_retrain_genotype, plans_with_cells)
from nnunet_iac.settings import IACSettings
from nnunet_iac.trainer_base import nnUNetTrainerIACBase, refuse_distributed


class IACRetrainTrainer(nnUNetTrainerIACBase):
    validation_setting = "retrain_validation"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        refuse_distributed(self.__class__.__name__)
        settings = IACSettings.from_env()
        default = default_genotype_path(str(nnUNet_results), plans["dataset_name"], plans["plans_name"],
                                        configuration, fold)
        genotype, self.genotype_source = load_retrain_genotype(default, settings.genotype)
        resolved = PlansManager(plans).get_configuration(configuration)
        check_genotype_fits(genotype, self.genotype_source, base_architecture_of(resolved.configuration["architecture"]),
                            resolved.patch_size)
        plans = plans_with_cells(plans, configuration, genotype, settings.cell_options)
        model_folder = Path(str(nnUNet_results)) / plans["dataset_name"] / \
            f"{self.__class__.__name__}__{plans['plans_name']}__{configuration}"
        check_no_conflicting_fold(model_folder, configuration, plans["configurations"][configuration]["architecture"],
                                  fold)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.genotype = genotype

    def configure_optimizers(self):
        """The cell weights only, with nnUNet_IAC_retrain_optimizer (see nnunet_iac.optimizers)."""
        return retrain_optimizer(self.iac_settings.retrain_optimizer, cell_parameters(unwrap(self.network)),
                                 self.initial_lr, self.weight_decay, self.num_epochs, self.iac_settings.retrain_lr)

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0 and self.genotype_source.resolve() != (Path(self.output_folder) / "genotype.json").resolve():
            shutil.copyfile(self.genotype_source, join(self.output_folder, "genotype.json"))

    def iac_state(self) -> dict:
        return {**super().iac_state(), "genotype": self.genotype.to_dict(), "genotype_source": str(self.genotype_source)}
