"""The recipes the benchmark can run every arm in (``--regime``): which trainers, and which checkpoint counts.

- ``short`` (default): nnU-Net's recipe (augmentation, Dice + CE, SGD with poly) at the benchmark's short
  budget; every arm predicts with its final checkpoint.
- ``plateau``: nnU-Net's recipe with a base trained until its curve is flat: four times the profile's base
  epochs on a network of half the width (features per stage halved, a copied plans file, so that it fits on
  2 cores), resumable across sittings; the plateau criterion (nnunet_iac/benchmark/plateau.py) is reported.
  The arms after the base are the short regime's.
- ``paper``: the IAC paper's recipe for every arm (its Stage I and III settings): no data augmentation,
  Dice loss, Adam at a constant 1e-3, and the best epoch's checkpoint, chosen on a share of the training
  cases that no arm trains on and none reports (nnunet_iac.nnunet.selection_split). The paper's IAC gain is a
  generalisation gain measured in this recipe (its control overfits without augmentation; IAC paper, Table 2).
  The IAC arm starts from the base's best checkpoint, the controls too.
The trainers are in trainers/benchmarking/nnUNetTrainerBench.py (and nnunet_iac's ``*_noDA`` IAC variants).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Regime:
    name: str
    base_trainer: str
    control_trainers: dict = field(hash=False)
    search_trainer: str
    retrain_trainer: str
    #: the checkpoint every arm predicts with, and the base checkpoint IAC and the controls start from
    checkpoint: str
    #: the Stage III of ``nnunet-iac select``'s trials (train_search, scored on val_search) in this recipe
    trial_trainer: str = "nnUNetTrainerIACRetrainTrial"
    #: the profile's base epochs times this, and its features per stage divided by that (unless given)
    base_epochs_factor: int = 1
    features_divisor: int = 1
    #: what each control does in this regime, for the report (its trainers differ between regimes)
    controls_described: str = ("`control` restarts nnU-Net's schedule (SGD, poly from 1e-2) on every weight, "
                               "`control_lowlr` continues every weight with SGD at a constant 1e-3, "
                               "`control_decoder` trains the decoder alone with nnU-Net's schedule")

    def epoch_rule(self, retrain_epochs: int) -> str:
        """Which epoch every arm predicts with, for the report (issue 37: one rule for every arm)."""
        if self.checkpoint == "checkpoint_final.pth":
            return "every arm predicts with its last epoch (checkpoint_final.pth): one candidate epoch each"
        return (f"the base predicts with its best epoch among all of its epochs; every later arm (IAC, random "
                f"genotypes, the selected genotype, controls) with its best among its last {retrain_epochs} "
                f"epochs (the retrain's length), chosen on the selection split: {retrain_epochs} candidate epochs "
                f"each (nnunet_iac.nnunet.best_epoch_window)")


SHORT = Regime("short", "nnUNetTrainerBench",
               {"restart": "nnUNetTrainerBenchControl", "lowlr": "nnUNetTrainerBenchControlLowLR",
                "decoder": "nnUNetTrainerBenchControlDecoder"},
               "nnUNetTrainerIACSearch", "nnUNetTrainerIACRetrain", "checkpoint_final.pth")
PAPER = Regime("paper", "nnUNetTrainerBenchPaper",
               {"restart": "nnUNetTrainerBenchControlPaper", "lowlr": "nnUNetTrainerBenchControlLowLRPaper",
                "decoder": "nnUNetTrainerBenchControlDecoderPaper"},
               "nnUNetTrainerIACSearchPaper", "nnUNetTrainerIACRetrainPaper", "checkpoint_best.pth",
               trial_trainer="nnUNetTrainerIACRetrainPaperTrial",
               controls_described="`control` continues every weight in the base's own recipe (Adam at 1e-3, a fresh "
                                  "optimizer state), `control_lowlr` the same at 1e-4, `control_decoder` the decoder "
                                  "alone at 1e-3")
PLATEAU = replace(SHORT, name="plateau", base_epochs_factor=4, features_divisor=2)
REGIMES = {regime.name: regime for regime in (SHORT, PLATEAU, PAPER)}
