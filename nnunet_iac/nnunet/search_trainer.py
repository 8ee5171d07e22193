"""Stage II inside nnU-Net's own training loop: cell search on a frozen, trained base.

nnU-Net's loop runs unchanged; each of its training iterations becomes one search iteration: an
architecture update on a val_search batch (after the warm-up epochs), then nnU-Net's own train_step
updates the cell weights on a train_search batch (paper Algorithm 1). nnU-Net's per-epoch validation
monitors val_search; the fold's validation cases are used only by the final standard validation.

The architecture update, the supernet and the genotype belong to the search strategy
(``search_strategy_class``, a ``nnunet_iac.search.strategy.SearchStrategy``; PC-DARTS by default): a
variant trainer that sets another strategy changes the algorithm and nothing else.

Under DDP (``-num_gpus N``) one architecture lives on every rank: each rank takes the architecture step on
its own val_search batch (nnU-Net's batch size per rank, for both search loaders) and the alpha/beta
gradients are averaged before Adam steps (``search.architecture_step``), so alpha/beta, Adam's moments and the
scaler stay equal; every rank keeps the same history and derives the same genotype, so early stops happen on
every rank at once; the losses a NaN stop is decided on are averaged over ranks first; rank 0 writes every file.
Strategies that cannot run under DDP say why (``SearchStrategy.ddp_refusal``) and are refused before anything
is written.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_iac.common.distributed import average_value, broadcast_tensors, is_distributed, rank_zero_first
from nnunet_iac.nnunet.checkpointing import unwrap
from nnunet_iac.nnunet.data_loading import make_training_loader, shut_down
from nnunet_iac.network.implant import cell_parameters
from nnunet_iac.search.adas import adas_for_cells
from nnunet_iac.search.optimizers import CELL_LR, cell_optimizer
from nnunet_iac.search.plots import draw_genotype, plot_operation_weights, plot_signal
from nnunet_iac.search.schedules import search_cell_scheduler
from nnunet_iac.search.history import HISTORY_FILE, EpochRecord, SearchHistory, alpha_entropy, parameter_free_ops
from nnunet_iac.search.split import load_or_create_split
from nnunet_iac.search.architecture_step import gradients_only_for
from nnunet_iac.search.strategies import STRATEGIES
from nnunet_iac.nnunet.settings import PREFIX, IACSettings, SettingsError
from nnunet_iac.search.strategy import StrategyContext
from nnunet_iac.search.signal_monitor import CellSignalMonitor, describe_signal
from nnunet_iac.nnunet.trainer_base import IACTrainerBase, MultiProcessNotSupported

GENOTYPE_FILE = "genotype.json"
WEIGHTS_PLOT = "operation_weights.png"
GENOTYPE_PLOT = "genotype.png"
SIGNAL_PLOT = "signal.png"
SEARCH_LOSS_LABELS = {"train_loss": "supernet, train_search (cell steps)",
                      "arch_loss": "supernet, val_search (alpha/beta steps)",
                      "val_loss": "supernet, val_search (nnU-Net validation)"}


class SearchConverged(Exception):
    """The genotype has been stable for the configured number of epochs."""


class StrategyMismatch(RuntimeError):
    """--c with a trainer whose search strategy is not the one that wrote the checkpoint."""


class SearchDiverged(FloatingPointError):
    """A search loss became NaN or infinite; nothing of the current epoch is saved."""


class IACSearchTrainer(IACTrainerBase):
    validation_setting = "search_validation"
    #: the search algorithm (a SearchStrategy subclass); None: the one ``nnUNet_IAC_strategy`` names (a variant
    #: sets ``iac_defaults = {"strategy": ...}`` for a registered one, or a class here for its own)
    search_strategy_class = None

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        self.refuse_ddp_if_unsupported()
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = CELL_LR
        self.strategy = self.strategy_class()()
        self.signal_monitor = None
        self.dataloader_arch = None
        self.search_split = None
        self.search_datasets = None
        self.history = SearchHistory()
        self._arch_losses = []

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                   enable_deep_supervision: bool = True):
        """A class method (nnU-Net's is static; it calls it on the instance and the predictor on the class), so
        that a variant's strategy and setting defaults build its supernet."""
        base = nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                        num_output_channels, enable_deep_supervision)
        return cls.strategy_class().build_supernet(base, cls.read_settings().cell_options)

    @classmethod
    def strategy_class(cls) -> type:
        """The variant's own ``search_strategy_class``, else the registered strategy the settings name. A variant
        with its own class refuses an explicit ``nnUNet_IAC_strategy`` (it would be silently ignored)."""
        if cls.search_strategy_class is None:
            return STRATEGIES[cls.read_settings().strategy]
        if "strategy" in IACSettings.explicit():
            raise SettingsError(f"{cls.__name__} searches with its own strategy "
                                f"({cls.search_strategy_class.__name__}); unset {PREFIX}strategy, or use "
                                f"nnUNetTrainerIACSearch with {PREFIX}strategy.")
        return cls.search_strategy_class

    @classmethod
    def refuse_ddp_if_unsupported(cls) -> None:
        """Under DDP, a strategy with a ``ddp_refusal`` stops here, before anything is written, on every rank."""
        strategy = cls.strategy_class()
        if is_distributed() and strategy.ddp_refusal:
            raise MultiProcessNotSupported(
                f"{cls.__name__} cannot run the {strategy.name!r} search strategy on several GPUs "
                f"(-num_gpus > 1): {strategy.ddp_refusal} Run it on one GPU (drop -num_gpus), or search with "
                f"nnUNet_IAC_strategy=pcdarts or cost, which run under DDP.")

    def make_optimizers(self):
        """Cell weights: SGD lr 0.01, momentum as nnU-Net (see optimizers), with nnUNet_IAC_search_schedule:
        PC-DARTS' cosine (default) or the paper's cosine power annealing (4.2.2; see schedules); or, with
        nnUNet_IAC_cell_optimizer=adas, Adas (a rate per convolution from its probe, see adas)."""
        settings = self.iac_settings
        if settings.cell_optimizer == "adas":
            return adas_for_cells(unwrap(self.network), settings.adas_lr, settings.adas_beta, settings.adas_zeta)
        optimizer = cell_optimizer(cell_parameters(unwrap(self.network)))
        return optimizer, search_cell_scheduler(self.iac_settings.search_schedule, optimizer, CELL_LR, self.num_epochs)

    def initialize(self):
        """The strategy is set up on rank 0 first (what it measures once and caches in the fold folder, the
        others read), and rank 0's alpha/beta are copied to every rank (DDP leaves them out of its own copy)."""
        super().initialize()
        with rank_zero_first():
            self.strategy.setup(unwrap(self.network), StrategyContext(
                self.device, self.iac_settings.arch_lr, options=self.iac_settings.to_dict(),
                patch_size=tuple(self.configuration_manager.patch_size), output_folder=Path(self.output_folder)))
        broadcast_tensors(self.strategy.architecture_parameters())
        self.signal_monitor = CellSignalMonitor(unwrap(self.network))

    @property
    def is_warmup(self) -> bool:
        return self.current_epoch < self.iac_settings.warmup_epochs

    def get_tr_and_val_datasets(self):
        """train_search trains the cell weights; val_search (the other half) steers alpha/beta and is monitored."""
        train_keys, _ = self.do_split()
        with rank_zero_first():  # rank 0 writes search_split.json, the others read it
            self.search_split = load_or_create_split(Path(self.output_folder), train_keys, self.iac_settings.seed,
                                                     self.fold)
        self.print_to_log_file(f"Search split: {len(self.search_split['train_search'])} train_search and "
                               f"{len(self.search_split['val_search'])} val_search cases (of the fold's training "
                               f"cases; its validation cases are not used by the search).")
        self.search_datasets = tuple(
            self.dataset_class(self.preprocessed_dataset_folder, self.search_split[part],
                               folder_with_segs_from_previous_stage=self.folder_with_segs_from_previous_stage)
            for part in ("train_search", "val_search"))
        return self.search_datasets

    def get_dataloaders(self):
        loader_train, loader_val = super().get_dataloaders()
        self.dataloader_arch = make_training_loader(self, self.search_datasets[1])
        return loader_train, loader_val

    def train_step(self, batch: dict) -> dict:
        """The architecture step on the plain network (past nnU-Net's DDP wrapper, see ``architecture_step``),
        then nnU-Net's step of the cell weights through it. The losses are averaged over ranks before the NaN
        check, so that every rank stops or none does (a no-op in one process)."""
        arch_loss = float("nan")
        if not self.is_warmup:
            arch_loss = self.strategy.architecture_update(unwrap(self.network), self.loss,
                                                          lambda: next(self.dataloader_arch),
                                                          self.signal_monitor.observe_architecture)
            arch_loss = average_value(arch_loss)
            self.check_finite(arch_loss, "architecture (alpha/beta) loss on val_search")
        with gradients_only_for(cell_parameters(unwrap(self.network)), self.strategy.architecture_parameters()):
            result = super().train_step(batch)
        self.signal_monitor.observe_cells()
        self.check_finite(average_value(float(result["loss"])), "cell-weight loss on train_search")
        return {**result, "arch_loss": np.array(arch_loss)}

    def check_finite(self, loss: float, what: str) -> None:
        if np.isfinite(loss):
            return
        epoch = self.current_epoch
        kept = (f"genotype.json and search_history.json hold the last good state (epoch {epoch - 1}), and "
                f"checkpoint_latest.pth the last checkpoint written (every nnUNet_IAC_save_every="
                f"{self.iac_settings.save_every} epochs)") if epoch > 0 else "no epoch had finished, nothing was saved"
        raise SearchDiverged(
            f"The search diverged in epoch {epoch}: the {what} is {loss}. Nothing of epoch {epoch} was written; "
            f"in {self.output_folder} {kept}. Retrain the cells from that genotype (nnUNetTrainerIACRetrain) or "
            f"search again with another nnUNet_IAC_seed; if it recurs, check the base and the data for NaNs.")

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.signal_monitor.reset()

    def on_train_epoch_end(self, train_outputs):
        super().on_train_epoch_end(train_outputs)
        self._arch_losses = [float(o["arch_loss"]) for o in train_outputs]

    def current_genotype(self):
        """The strategy's genotype now, recording the cell options and search space the supernet was built
        with (genotype.json and every search_history.json row), which Stage III then builds its cells from."""
        view = self.current_view()
        return view.genotype, view.op_weights, view.edge_weights

    def current_view(self):
        """The strategy's ``ArchitectureView`` with this run's meta (``current_genotype``)."""
        network = unwrap(self.network)
        meta = {
            "spatial_dims": len(self.configuration_manager.patch_size),
            "levels": len(network.decoder.stages),  # the decoder's; which carry cells is the cell option 'levels' 
            "epoch": self.current_epoch,
            "dataset": self.plans_manager.dataset_name,
            "plans": self.plans_manager.plans_name,
            "configuration": self.configuration_name,
            "fold": self.fold,
        }
        return self.strategy.current(meta, self.iac_settings.genotype_cell_options())

    def on_epoch_end(self):
        # the strategy's between-epoch change (e.g. pruning) before the epoch is recorded and checkpointed
        self.strategy.end_epoch(searching=not self.is_warmup)
        self.record_epoch()
        self.probe_cells_after_epoch()
        super().on_epoch_end()
        if self.strategy.finished() and self.current_epoch < self.num_epochs:
            self.print_to_log_file(f"The {self.strategy.name} strategy has nothing left to decide (every edge has one "
                                   f"operation left): stopping the search.")
            raise SearchConverged()
        stable = self.history.stable_epochs()
        if self.iac_settings.stable_epochs and stable >= self.iac_settings.stable_epochs \
                and self.current_epoch < self.num_epochs:
            self.print_to_log_file(f"Genotype unchanged for {stable} epochs: stopping the search early "
                                   f"(nnUNet_IAC_stable_epochs={self.iac_settings.stable_epochs}, 0 disables).")
            raise SearchConverged()

    def record_epoch(self) -> None:
        """The epoch's history row on every rank (the early stop reads it: every rank must stop alike); rank 0
        writes search_history.json and genotype.json."""
        with torch.no_grad():
            genotype, op_weights, edge_weights = self.current_genotype()
        started = self.logger.get_value("epoch_start_timestamps", step=-1)
        arch_losses = [x for x in self._arch_losses if np.isfinite(x)]
        signal = self.signal_monitor.epoch_summary()
        record = EpochRecord(
            epoch=self.current_epoch, phase="warmup" if self.is_warmup else "search",
            genotype=genotype.to_dict(), op_weights=op_weights.tolist(), edge_weights=edge_weights.tolist(),
            train_loss=float(self.logger.get_value("train_losses", step=-1)),
            arch_loss=float(np.mean(arch_losses)) if arch_losses else float("nan"),
            val_loss=float(self.logger.get_value("val_losses", step=-1)),
            seconds=time.time() - started, parameter_free_ops=parameter_free_ops(genotype),
            alpha_entropy=alpha_entropy(op_weights), strategy_fields=self.strategy.epoch_fields() or None, **signal)
        self.history.append(record)
        if self.local_rank != 0:
            return
        self.history.save(Path(self.output_folder) / HISTORY_FILE)
        genotype.save(Path(self.output_folder) / GENOTYPE_FILE)
        self.print_to_log_file(f"IAC {record.phase} epoch {record.epoch}: alpha entropy {record.alpha_entropy:.4f}, "
                               f"{record.parameter_free_ops} parameter-free ops chosen, {describe_signal(signal)}; "
                               f"genotype:\n"
                               + genotype.describe())

    def run_training(self):
        try:
            super().run_training()
        except SearchConverged:
            self.on_train_end()
        except SearchDiverged as e:
            self.print_to_log_file(str(e))
            for loader in (self.dataloader_train, self.dataloader_val, self.dataloader_arch):
                shut_down(loader)
            raise

    def on_train_end(self):
        if self.history.records:
            self.conclude_search()
        super().on_train_end()
        shut_down(self.dataloader_arch)
        if self.local_rank == 0 and self.history.records:
            out = Path(self.output_folder)
            with torch.no_grad():
                view = self.current_view()
            genotype = view.genotype
            # the strategy's own operation names and the cell graph: no reach into one strategy's modules
            plot_operation_weights(self.history.records, view.operation_names, genotype.topology, out / WEIGHTS_PLOT)
            plot_signal(self.history.to_list(), out / SIGNAL_PLOT, SEARCH_LOSS_LABELS)
            self.plot_probes()
            genotype.save(out / GENOTYPE_FILE)
            draw_genotype(genotype, out / GENOTYPE_PLOT, f"{self.plans_manager.dataset_name} {self.configuration_name} "
                                                         f"fold {self.fold}, epoch {self.current_epoch - 1}")
            self.print_to_log_file(f"Final genotype written to {out / GENOTYPE_FILE}")

    def conclude_search(self) -> None:
        """The strategy's last word on the trained supernet (``end_search``), before nnU-Net writes the final
        checkpoint: on val_search batches without augmentation (nnU-Net's validation loader of this trainer)."""
        self.network.eval()
        with torch.no_grad():
            self.strategy.end_search(self.validation_step, lambda: next(self.dataloader_val))

    def iac_state(self) -> dict:
        return {**super().iac_state(), "strategy": {"name": self.strategy.name, "state": self.strategy.state_dict()},
                "history": self.history.to_list(), "search_split": self.search_split}

    def restore_iac_state(self, state: dict) -> None:
        """The signal monitor is not restored: it starts empty with every epoch, the unit of resuming.
        Checkpoints written before the strategy seam hold PC-DARTS' optimizer state at the top level."""
        saved = state.get("strategy")
        if saved is not None and saved.get("name") != self.strategy.name:
            raise StrategyMismatch(
                f"The checkpoint was written by a search with strategy {saved.get('name')!r}; this trainer "
                f"({self.__class__.__name__}) searches with {self.strategy.name!r}. Continue it with the trainer that "
                f"wrote it, or start this search in its own output folder (without --c).")
        self.strategy.load_state_dict(saved["state"] if saved is not None else state)
        self.history = SearchHistory.from_list(state.get("history", []))
