"""nnU-Net trainers of the benchmark: the base arm (short budget) and the control arm (fine-tuning).

nnU-Net finds them through ``nnUNet_extTrainer`` (this folder is inside the package's trainer folder, as
nnU-Net's own ``variants/benchmarking``) and imports this file by path, so it uses absolute imports only and
does nothing at import time. nnU-Net's trainer ``__init__`` signature is fixed, so the budget comes from
environment variables set by ``nnunet-iac benchmark`` (nnunet_iac/benchmark/arms.py):

- ``nnUNet_BENCH_epochs``, ``nnUNet_BENCH_iterations_per_epoch``, ``nnUNet_BENCH_val_iterations_per_epoch``
- ``nnUNet_BENCH_save_every``: epochs between nnU-Net's latest checkpoints (the base: 5, so that ``--c``
  continues a long base close to where a sitting ended)
- ``nnUNet_BENCH_final_validation=0`` skips nnU-Net's final validation (the benchmark predicts the
  validation cases with nnUNetv2_predict instead, the same way for every arm)
- ``nnUNet_BENCH_initial_checkpoint`` (controls only): the base checkpoint to start from
- ``nnUNet_BENCH_seed`` (controls): every epoch starts from generators seeded by (seed, epoch), as the IAC
  trainers do (nnunet_iac.common.determinism), so seeds of a control are repeatable runs, not just reruns
- ``nnUNet_BENCH_best_window`` (controls): ``checkpoint_best.pth`` only from the last this-many epochs (0: all),
  the IAC arm's retrain epochs, so that a longer control has no more candidate epochs than IAC
  (nnunet_iac.nnunet.best_epoch_window; issue 37)

Three controls fine-tune the base for as many batches as the IAC arm consumed, so that IAC is judged against
the best use of the same extra training (issue 14): a restart of nnU-Net's schedule on every weight, a
continuation at a low constant learning rate, and the decoder alone (the part IAC changes). Adapting to a new
site (issue 36) adds the parameter-efficient ones: the norms' affine weights with the biases, the first encoder
stage.

The ``*Paper`` trainers are the same arms in the IAC paper's recipe (``--regime paper``): no data
augmentation (nnU-Net's NoDA hooks), Dice loss (nnU-Net's DiceLoss variant), Adam at a constant rate, and the
best epoch chosen on a held-out share of the training cases (nnunet_iac.nnunet.selection_split), for the base,
the controls and both IAC stages alike; ``nnUNetTrainerIACRetrainPaperTrial`` is the paper-recipe Stage III that
``nnunet-iac select`` trials (``--select``, ``--select-evolution``) run.
"""
import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA
from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerDiceLoss import nnUNetTrainerDiceLoss

from nnunet_iac.common.determinism import seed_epoch
from nnunet_iac.nnunet.best_epoch_window import BestEpochWindowMixin
from nnunet_iac.nnunet.checkpointing import safe_load, unwrap
from nnunet_iac.network.trainable_parts import ALL, DECODER, FIRST_STAGE, NORM, train_only
from nnunet_iac.nnunet.selection_split import SelectionSplitMixin
from nnunet_iac.nnunet.trial_trainer import TrialSplitMixin
from nnunet_iac.search.schedules import ConstantLRScheduler
from nnunet_iac.trainers.nnUNetTrainerIACRetrain_noDA import nnUNetTrainerIACRetrain_noDA
from nnunet_iac.trainers.nnUNetTrainerIACSearch_noDA import nnUNetTrainerIACSearch_noDA
from nnunet_iac.nnunet.settings import parse_int

PREFIX = "nnUNet_BENCH_"
#: the low-learning-rate control's constant rate: a tenth of nnU-Net's initial 1e-2, the rate nnU-Net's poly
#: schedule passes about 90 % of the way through training, so the base continues about where it was, no restart
LOW_LR = 1e-3


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(PREFIX + name, "")
    if raw == "":
        return default
    value = parse_int(PREFIX + name, raw, default)
    if value < 0:
        raise ValueError(f"{PREFIX}{name}={value} must not be negative.")
    return value


class nnUNetTrainerBench(BestEpochWindowMixin, nnUNetTrainer):
    """nnU-Net's own trainer with the benchmark's budget (the base arm)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = _setting("epochs", self.num_epochs)
        self.num_iterations_per_epoch = _setting("iterations_per_epoch", self.num_iterations_per_epoch)
        self.num_val_iterations_per_epoch = _setting("val_iterations_per_epoch", self.num_val_iterations_per_epoch)
        self.save_every = max(1, _setting("save_every", self.save_every))
        self.best_window = _setting("best_window", self.best_window)

    def on_train_epoch_start(self):
        seed = _setting("seed", -1)
        if seed >= 0:
            seed_epoch(seed, self.current_epoch)
        super().on_train_epoch_start()

    def _do_i_compile(self):
        """No torch.compile, like the IAC trainers, so that iteration times of all arms compare."""
        return False

    def perform_actual_validation(self, save_probabilities: bool = False):
        if _setting("final_validation", 1) == 0:
            self.print_to_log_file(f"Skipping nnU-Net's final validation ({PREFIX}final_validation=0).")
            return
        super().perform_actual_validation(save_probabilities)


class nnUNetTrainerBenchControl(nnUNetTrainerBench):
    """Fine-tunes *all* weights of the base with nnU-Net's optimizer and schedule (the control arm).

    nnU-Net's ``-pretrained_weights`` skips the segmentation heads; the control must continue from
    exactly the base network, so every tensor is loaded here, strictly, with ``map_location``.
    """

    def initialize(self):
        super().initialize()
        path = os.environ.get(PREFIX + "initial_checkpoint", "")
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(f"{PREFIX}initial_checkpoint={path!r} is not a checkpoint file; set it to the "
                                    f"base arm's fold_X/checkpoint_final.pth.")
        checkpoint = safe_load(path, map_location=self.device)  # weights-only, as nnunet-iac reads bases
        unwrap(self.network).load_state_dict(checkpoint["network_weights"], strict=True)
        self.print_to_log_file(f"Control arm: all {len(checkpoint['network_weights'])} tensors of {path} loaded "
                               f"(heads included); fine-tuning every weight.")


class nnUNetTrainerBenchControlLowLR(nnUNetTrainerBenchControl):
    """The base continued at a low constant learning rate: nnU-Net's SGD at ``LOW_LR``, no poly restart."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.network.parameters(), LOW_LR, weight_decay=self.weight_decay,
                                    momentum=0.99, nesterov=True)
        return optimizer, ConstantLRScheduler(optimizer, self.num_epochs)


class PartControl(nnUNetTrainerBenchControl):
    """Fine-tunes one part of the base (nnunet_iac.network.trainable_parts) with nnU-Net's schedule, the rest
    frozen. Frozen weights get no gradient, so nnU-Net's SGD leaves them as they are."""

    part = ALL

    def initialize(self):
        super().initialize()
        trained, frozen = train_only(unwrap(self.network), self.part)
        self.print_to_log_file(f"Control training the part '{self.part}': {trained:,} parameters trained, {frozen:,} "
                               f"frozen.")


class nnUNetTrainerBenchControlDecoder(PartControl):
    """Fine-tunes the decoder only, the encoder frozen: the part of the network IAC changes, trained without
    cells."""

    part = DECODER


class nnUNetTrainerBenchControlNorm(PartControl):
    """Fine-tunes the normalization layers' affine weights and every bias (issue 36: the classic
    parameter-efficient baseline of domain adaptation)."""

    part = NORM


class nnUNetTrainerBenchControlFirstStage(PartControl):
    """Fine-tunes the first encoder stage only (issue 36: where domain information sits)."""

    part = FIRST_STAGE


class PaperRecipe(SelectionSplitMixin, nnUNetTrainerNoDA, nnUNetTrainerDiceLoss):
    """The IAC paper's Stage-I recipe as nnU-Net hooks: no augmentation, Dice loss, Adam at ``paper_lr``
    constant; best epoch on the selection split. Listed before a benchmark trainer among the bases."""

    paper_lr = 1e-3

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), self.paper_lr)
        return optimizer, ConstantLRScheduler(optimizer, self.num_epochs)


class nnUNetTrainerBenchPaper(PaperRecipe, nnUNetTrainerBench):
    """The base in the paper's recipe."""


class nnUNetTrainerBenchControlPaper(PaperRecipe, nnUNetTrainerBenchControl):
    """The paper's control: more epochs of the base's own recipe (Adam 1e-3 has no schedule to restart)."""


class nnUNetTrainerBenchControlLowLRPaper(PaperRecipe, nnUNetTrainerBenchControl):
    """The paper's recipe continued at a tenth of its rate."""

    paper_lr = 1e-4


class nnUNetTrainerBenchControlDecoderPaper(PaperRecipe, nnUNetTrainerBenchControlDecoder):
    """The paper's recipe on the decoder alone."""


class nnUNetTrainerIACSearchPaper(SelectionSplitMixin, nnUNetTrainerIACSearch_noDA, nnUNetTrainerDiceLoss):
    """The search in the paper's recipe: no augmentation, Dice loss, on the training cases outside the selection
    split (halved into train_search and val_search as always)."""


class nnUNetTrainerIACRetrainPaper(SelectionSplitMixin, nnUNetTrainerIACRetrain_noDA, nnUNetTrainerDiceLoss):
    """Stage III in the paper's recipe: Adam at a constant 1e-3 (``adam_constant``), no augmentation, Dice loss,
    best epoch on the selection split; retrains the genotype of nnUNetTrainerIACSearchPaper."""

    iac_defaults = {"retrain_optimizer": "adam_constant"}
    search_trainer_name = "nnUNetTrainerIACSearchPaper"


class nnUNetTrainerIACRetrainPaperTrial(TrialSplitMixin, nnUNetTrainerIACRetrainPaper):
    """A genotype trial of ``nnunet-iac select`` in the paper's recipe: Stage III on the search's train_search,
    best epoch on its val_search, and nnU-Net's final validation of that best epoch (the paper regime predicts with
    the best epoch, so a trial scored on its last one would judge another model than the benchmark reports)."""

    def perform_actual_validation(self, save_probabilities: bool = False):
        best = os.path.join(self.output_folder, "checkpoint_best.pth")
        if os.path.isfile(best):
            self.load_checkpoint(best)
            self.print_to_log_file(f"Genotype trial: validating the best epoch's weights ({best}).")
        else:
            self.print_to_log_file(f"Genotype trial: no {best} (no epoch was validated); validating the last weights.")
        super().perform_actual_validation(save_probabilities)
