"""Per-epoch record of the search: genotype, op/edge weights, losses, collapse and signal indicators."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.cells.operations import PARAMETER_FREE
from nnunet_iac.search.signal_history import json_number


@dataclass
class EpochRecord:
    """One search epoch. All losses are the supernet's (nnU-Net's Dice + CE), means over the epoch:

    ``train_loss``: the cell-weight steps on train_search batches (nnU-Net's ``train_losses``);
    ``arch_loss``: the alpha/beta steps on augmented val_search batches (NaN in warm-up);
    ``val_loss``: nnU-Net's per-epoch validation, which runs on val_search (nnU-Net's ``val_losses``).
    The ``snr_*`` / ``projection_norm`` diagnostics (nnunet_iac.search.signal_monitor) are None in histories
    written before they existed; ``snr_projection`` and ``projection_norm`` have one value per decoder
    level, level 0 the lowest resolution. ``strategy_fields`` holds the search strategy's own numbers
    (``SearchStrategy.epoch_fields``), None when it has none.
    """

    epoch: int
    phase: str
    genotype: dict
    op_weights: list
    edge_weights: list
    train_loss: float
    arch_loss: float
    val_loss: float
    seconds: float
    parameter_free_ops: int
    alpha_entropy: float
    snr_alpha: float | None = None
    snr_beta: float | None = None
    snr_projection: list | None = None
    projection_norm: list | None = None
    strategy_fields: dict | None = None


NUMBER_FIELDS = ("train_loss", "arch_loss", "val_loss", "snr_alpha", "snr_beta", "snr_projection", "projection_norm")
_NAN_WHEN_NULL = ("train_loss", "arch_loss", "val_loss")


HISTORY_FILE = "search_history.json"
#: what every reader of a history relies on in each row (the trainer's own rows hold every EpochRecord field)
ROW_KEYS = ("epoch", "phase", "genotype")


class HistoryFileError(ValueError):
    """A search_history.json that is missing (``missing``) or not a list of epoch rows."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def read_history_rows(path: Path) -> list[dict]:
    """The rows of a search_history.json, each with at least ``ROW_KEYS``: the one reader of the file behind
    ``SearchHistory.load``, ``nnUNet_IAC_genotype_epoch`` and ``select``'s candidates, which wrap its error in
    their own advice. Rows are plain dicts, so histories written before or after a field was added read alike."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise HistoryFileError(f"No search history at {path}.", missing=True) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HistoryFileError(f"{path} is not valid JSON ({e}), so not a search history written by "
                               f"nnUNetTrainerIACSearch.") from e
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(ROW_KEYS) <= set(r) for r in rows):
        raise HistoryFileError(f"{path} is not a search history written by nnUNetTrainerIACSearch (a list of "
                               f"epochs with {', '.join(repr(k) for k in ROW_KEYS)}).")
    try:
        for row in rows:
            row["epoch"] = int(row["epoch"])
    except (TypeError, ValueError) as e:
        raise HistoryFileError(f"{path} has an epoch that is not a number ({e}).") from e
    return rows


def alpha_entropy(op_weights: torch.Tensor) -> float:
    """Mean over edges of the entropy of softmax(alpha), in nats; log(8) = 2.08 is undecided."""
    p = op_weights.detach().float().clamp_min(1e-12)
    return float(-(p * p.log()).sum(-1).mean())


def parameter_free_ops(genotype: Genotype) -> int:
    """Chosen operations without weights: many of them is the known DARTS collapse."""
    return sum(op in PARAMETER_FREE for op in genotype.operations())


class SearchHistory:
    def __init__(self, records: list[EpochRecord] | None = None):
        self.records = list(records or [])

    def append(self, record: EpochRecord) -> None:
        self.records = [r for r in self.records if r.epoch < record.epoch] + [record]

    def stable_epochs(self) -> int:
        """How many search epochs in a row ended with the same genotype as the epoch before."""
        count = 0
        searched = [r for r in self.records if r.phase == "search"]
        for previous, current in zip(reversed(searched[:-1]), reversed(searched)):
            if previous.genotype["nodes"] != current.genotype["nodes"]:
                break
            count += 1
        return count

    def to_list(self) -> list[dict]:
        rows = []
        for r in self.records:
            row = asdict(r)
            for key in NUMBER_FIELDS:
                row[key] = json_number(row[key])
            rows.append(row)
        return rows

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_list())

    @classmethod
    def from_list(cls, rows: list[dict]) -> "SearchHistory":
        """Rows written before the signal diagnostics existed get None for them; null losses become NaN."""
        return cls([EpochRecord(**{k: (math.nan if v is None and k in _NAN_WHEN_NULL else v)
                                   for k, v in row.items()}) for row in rows])

    @classmethod
    def load(cls, path: Path) -> "SearchHistory":
        return cls.from_list(read_history_rows(path))
