"""Training budgets of the benchmark: one profile per dataset, chosen to fit 2 CPU cores, and the paper's.

Every arm runs at the same batch and patch size (written into one copied plans file). Epochs count
nnU-Net epochs of ``iterations_per_epoch`` training iterations; each epoch also runs
``val_iterations_per_epoch`` monitoring batches (nnU-Net's pseudo-Dice), the same in every arm.
The reasoning behind each number and the measured times are in docs/benchmarks.md.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


class BudgetError(ValueError):
    """A budget setting that cannot run; the message names the option."""


@dataclass(frozen=True)
class Budget:
    profile: str
    batch_size: int
    patch_size: tuple[int, ...] | None  # None keeps nnU-Net's planned 2d patch size
    iterations_per_epoch: int
    val_iterations_per_epoch: int
    base_epochs: int
    search_epochs: int
    warmup_epochs: int
    retrain_epochs: int
    holdout: int  # labelled cases held out as the test set when no separate test set is given
    tta: bool  # nnUNetv2_predict's mirroring at prediction time (same for all arms)
    step_size: float  # nnUNetv2_predict's sliding-window step (same for all arms)
    features_divisor: int = 1  # the planned network's features per stage divided by this (all arms)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides) -> "Budget":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        positive = ("batch_size", "iterations_per_epoch", "base_epochs", "search_epochs", "retrain_epochs",
                    "features_divisor")
        for name in positive:
            if getattr(self, name) < 1:
                raise BudgetError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if not 0 <= self.warmup_epochs < self.search_epochs:
            raise BudgetError(f"--warmup-epochs ({self.warmup_epochs}) must be below --search-epochs "
                             f"({self.search_epochs}) so that the search has at least one epoch of alpha/beta steps.")
        if self.val_iterations_per_epoch < 1:
            raise BudgetError("--val-iterations-per-epoch must be at least 1 (nnU-Net's epoch-end logging needs one).")


# MSD Hippocampus 2d: nnU-Net plans patch 56x40 at batch 366; cut to 32. Measured on 2 CPU cores:
# base iteration ~0.68 s, warm-up iteration ~1.6 s, search iteration ~3.0 s, retrain iteration ~0.74 s;
# prediction with mirroring ~10 s per case, so the arms predict without it (docs/benchmarks.md).
HIPPOCAMPUS = Budget(profile="hippocampus", batch_size=32, patch_size=None, iterations_per_epoch=50,
                     val_iterations_per_epoch=5, base_epochs=30, search_epochs=7, warmup_epochs=2,
                     retrain_epochs=4, holdout=40, tta=False, step_size=0.5)

# DSB2018 nuclei 2d: nnU-Net plans a 7-stage U-Net (33.5 M parameters) on 256x256 patches at batch 27;
# network and patch are kept, the batch cut to nnU-Net's minimum of 2. Measured on 2 CPU cores: base
# iteration ~1.5 s, warm-up ~2.5 s, search ~4.4 s. Prediction of images up to 1388x1040 is the other
# large cost: no mirroring and a step of 1 (tiles without overlap), ~2.2 s per case, for every arm.
DSB2018 = Budget(profile="dsb2018", batch_size=2, patch_size=None, iterations_per_epoch=25,
                 val_iterations_per_epoch=2, base_epochs=16, search_epochs=4, warmup_epochs=1,
                 retrain_epochs=3, holdout=40, tta=False, step_size=1.0)

# Any other dataset: Hippocampus-like numbers; set batch/patch/epochs explicitly for large images.
GENERIC = replace(HIPPOCAMPUS, profile="generic")

# --smoke: every stage with a few iterations on a tiny dataset (the test suite).
SMOKE = Budget(profile="smoke", batch_size=2, patch_size=None, iterations_per_epoch=2, val_iterations_per_epoch=1,
               base_epochs=2, search_epochs=2, warmup_epochs=1, retrain_epochs=1, holdout=2, tta=False,
               step_size=0.5)

# The paper's full budget (section 4.2, BraTS 2D 128x128): Stage I 200 epochs at batch 128 (Adam),
# Stage II 500 epochs (15 warm-up) at batch 96, each a full pass over train_search_dt and val_search_dt,
# Stage III 200 epochs as Stage I, the fine-tuned comparison 200 extra epochs. The nnU-Net column is
# what the same plan is with nnU-Net's default training length (1000 x 250 iterations) and this
# package's defaults for the IAC stages.
PAPER = {
    "base": {"paper": "200 epochs, batch 128 (BraTS: 507 steps/epoch, ~101k steps)",
             "nnunet_default": "1000 epochs x 250 iterations (250k)"},
    "search": {"paper": "500 epochs (15 warm-up), batch 96 (337 steps/epoch, ~169k iterations)",
               "nnunet_default": "nnunet-iac default 200 epochs x 250 (15 warm-up); paper length 500 x 250"},
    "retrain": {"paper": "200 epochs, batch 128 (~101k steps)", "nnunet_default": "200 epochs x 250 iterations (50k)"},
    "control": {"paper": "200 extra epochs of the whole U-Net", "nnunet_default":
                "as many batches as search + retrain (here counted the same way)"},
}


def profile_for(dataset_name: str, smoke: bool) -> Budget:
    if smoke:
        return SMOKE
    lowered = dataset_name.lower()
    if "hippocampus" in lowered:
        return HIPPOCAMPUS
    if "dsb2018" in lowered or "nuclei" in lowered:
        return DSB2018
    return GENERIC


def parse_patch(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        patch = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        raise BudgetError(f"--patch-size {text!r} is not of the form 128x128.") from None
    if len(patch) != 2 or min(patch) < 1:
        raise BudgetError(f"--patch-size {text!r} must give two positive sizes for the 2d configuration, e.g. 128x128.")
    return patch
