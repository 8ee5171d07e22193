"""The seam between nnU-Net's training loop and a cell-search algorithm (issue 15).

The search trainer (``nnunet_iac/nnunet/search_trainer.py``) owns what every search shares with nnU-Net:
data (train_search / val_search loaders), the cell weights' optimizer and schedule, warm-up, logging,
per-epoch history, checkpoints, early stopping. A ``SearchStrategy`` owns only the architecture: how the
supernet is built from the base, how its architecture parameters are updated before each cell step, which
genotype it stands for now, the state a continued search needs, and extra per-epoch numbers for the
history. PC-DARTS (``search/pc_darts.py``) is the first; progressive pruning, probing or multi-objective
strategies (issues 16-18) are added as new modules and chosen by a trainer variant
(``search_strategy_class``), without touching the trainer.

Why an object with state and not a set of functions: a strategy keeps its own optimizer(s) and gradient
scaler, which must go into checkpoints with nnU-Net's own state and come back on ``--c``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.builders import CellOptions


@dataclass(frozen=True)
class StrategyContext:
    """What the trainer tells a strategy when the network exists: where it runs and its settings (``options``:
    every ``nnUNet_IAC_*`` setting by name, for strategies with settings of their own), the training patch size
    and the fold folder (for what a strategy measures once and caches)."""
    device: torch.device
    arch_lr: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)
    patch_size: tuple | None = None
    output_folder: Path | None = None


@dataclass
class ArchitectureView:
    """The strategy's current architecture as the trainer records and plots it (per-edge weights)."""
    genotype: Genotype
    op_weights: torch.Tensor
    edge_weights: torch.Tensor
    operation_names: tuple[str, ...]


class SearchStrategy(ABC):
    """One cell-search algorithm. Subclasses set ``name`` (recorded in the history and the genotype's meta)."""

    name: str = ""
    #: why this strategy cannot run under DDP (``-num_gpus N``), said to the user when it is refused there;
    #: empty: it can (its architecture step averages the gradients over ranks, ``architecture_step``, and the
    #: state it keeps follows from alpha/beta alone, so it is equal on every rank)
    ddp_refusal: str = ""

    @staticmethod
    @abstractmethod
    def build_supernet(base: nn.Module, options: CellOptions) -> nn.Module:
        """Implant searchable cells into ``base`` (static: nnU-Net builds networks from the trainer class)."""

    @abstractmethod
    def setup(self, network: nn.Module, context: StrategyContext) -> None:
        """Keep the built supernet (unwrapped: the module whose parameters are trained) and create optimizers
        and whatever else needs it and the device."""

    @abstractmethod
    def architecture_update(self, model: nn.Module, loss_fn: Callable, next_batch: Callable[[], dict],
                            on_gradients: Callable[[], None]) -> float:
        """Update the architecture once (the trainer calls it before each cell-weight step after warm-up);
        returns the loss it saw (NaN if it saw none). ``model`` is what the forward pass runs through (the
        trainer's plain network, never nnU-Net's DDP wrapper); ``next_batch`` draws a val_search batch; ``on_gradients`` must be
        called once the architecture's true (unscaled) gradients are in ``.grad``."""

    @abstractmethod
    def architecture_parameters(self) -> list[nn.Parameter]:
        """The parameters ``architecture_update`` changes (kept out of the cell-weight step)."""

    @abstractmethod
    def current(self, meta: dict[str, Any], cell_options: dict[str, Any]) -> ArchitectureView:
        """The genotype the architecture stands for now, with ``meta`` (and the strategy's name) in it and the
        ``cell_options`` the supernet was built with (Stage III builds its cells from them)."""

    def end_epoch(self, searching: bool) -> None:
        """Called once at the end of every epoch, before it is recorded and checkpointed (``searching`` is False
        in warm-up): where a strategy changes the search space between epochs, e.g. prunes operations."""

    def end_search(self, evaluate: Callable[[dict], dict], next_batch: Callable[[], dict]) -> None:
        """Called once when the search ends, however it ends (budget, early stop, ``finished``), before the
        final checkpoint and genotype are written: where a strategy decides on the trained supernet, e.g. evolves
        discrete genotypes. ``evaluate`` is nnU-Net's ``validation_step`` (a batch in, tp/fp/fn out), the network
        in eval mode; ``next_batch`` draws a val_search batch without augmentation. Nothing by default."""

    def finished(self) -> bool:
        """True when the strategy has nothing left to decide; the trainer then ends the search."""
        return False

    def epoch_fields(self) -> dict[str, float]:
        """Numbers of the strategy's own for this epoch's history row (``strategy_fields``; none by default:
        the trainer records losses, alpha entropy and the gradient signal for every strategy)."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """What a continued search needs besides the network's weights (saved in the checkpoint)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Counterpart of ``state_dict``; an empty dict (a checkpoint without it) keeps the fresh state."""
