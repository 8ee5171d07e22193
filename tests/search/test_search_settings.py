"""The search-only settings reach nnU-Net's loop: nnUNet_IAC_arch_lr, nnUNet_IAC_search_schedule and
nnUNet_IAC_init (recorded in the genotype), through the real nnUNetv2_train on fold 5 (no other test's folder)."""
import math

import pytest
import torch

from nnunet_iac.nnunet.checkpointing import safe_load
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.search.optimizers import CELL_LR
from nnunet_iac.search.schedules import CosinePowerLRScheduler
from nnunet_workspace import DATASET_ID

pytestmark = pytest.mark.integration

EPOCHS = 2
ENV = {"nnUNet_IAC_epochs": str(EPOCHS), "nnUNet_IAC_warmup_epochs": "1", "nnUNet_IAC_iterations_per_epoch": "2",
       "nnUNet_IAC_val_iterations_per_epoch": "1", "nnUNet_IAC_stable_epochs": "0",
       "nnUNet_IAC_search_validation": "0", "nnUNet_IAC_arch_lr": "0.003",
       "nnUNet_IAC_search_schedule": "cosine_power", "nnUNet_IAC_init": "small"}


@pytest.fixture(scope="module")
def searched(workspace):
    base = workspace.train_base("2d") / "fold_0" / "checkpoint_final.pth"
    workspace.run("nnUNetv2_train", str(DATASET_ID), "2d", "5", "-tr", "nnUNetTrainerIACSearch", "-device", "cpu",
                  env={**ENV, "nnUNet_IAC_base": str(base)})
    return workspace.results / "nnUNetTrainerIACSearch__nnUNetPlans__2d" / "fold_5"


def test_alpha_beta_use_the_arch_lr_and_the_cells_the_cosine_power_schedule(searched):
    checkpoint = safe_load(searched / "checkpoint_final.pth")
    assert checkpoint["iac"]["strategy"]["state"]["arch_optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(0.003)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], CELL_LR)
    schedule = CosinePowerLRScheduler(reference, CELL_LR, EPOCHS)
    schedule.step(EPOCHS - 1)
    cell_lr = checkpoint["optimizer_state"]["param_groups"][0]["lr"]
    assert cell_lr == pytest.approx(reference.param_groups[0]["lr"])
    plain_cosine = CELL_LR * 0.5 * (1 + math.cos(math.pi * (EPOCHS - 1) / EPOCHS))
    assert cell_lr < 0.9 * plain_cosine


def test_the_genotype_records_the_cell_init_it_was_searched_with(searched):
    assert Genotype.load(searched / "genotype.json").cell_options["init"] == "small"
