"""What a search did to its cells and to alpha, per seed, from the files it left (issue 17).

DARTS-ADP diagnoses a search whose convolutions do not learn (stable ranks near zero throughout), whose
architecture weights stay undecided and drift to parameter-free operations; Adas is its remedy. Comparing SGD
with Adas therefore needs, next to Dice and agreement, the same three symptoms per arm:

- alpha's entropy at the start of the search and at its end (search_history.json; log 8 = 2.08 is undecided);
- the share of the final genotype's operations that have no weights (identity, pools);
- the cells' stable rank at the first and the last probe of the search and of the retrain
  (probe_history.json: the mean over every probed convolution, each operation weighted by its probe rows), the
  share of those rows that are all noise, and with Adas the mean per-layer learning rate at the last probe.

Missing files (probing off, an older run) give None where their numbers would be, never an error: the benchmark
report must still be written for runs made before this measure.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.search.history import HISTORY_FILE, parameter_free_ops, read_history_rows
from nnunet_iac.search.probe_history import PROBE_HISTORY_FILE
from nnunet_iac.search.signal_history import load_signal_rows


def _weighted(row: dict, key: str) -> float | None:
    """The mean of ``key`` over every probed convolution of one probe row (operations weighted by their rows)."""
    operations = row["operations"].values()
    rows = sum(o["rows"] for o in operations)
    return sum(o[key] * o["rows"] for o in operations) / rows if rows else None


def probe_course(fold: Path) -> dict | None:
    """First and last probe of a run's cells: epochs, mean stable rank, all-noise share, Adas' mean rate (None
    without Adas). None when the run probed nothing."""
    rows = load_signal_rows(Path(fold) / PROBE_HISTORY_FILE)
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    rates = last.get("learning_rates")
    return {"epochs": [first["epoch"], last["epoch"]],
            "stable_rank": [_weighted(first, "stable_rank"), _weighted(last, "stable_rank")],
            "all_noise": [_weighted(first, "all_noise"), _weighted(last, "all_noise")],
            "last_learning_rate": statistics.mean(rates.values()) if rates else None}


def parameter_free_share(genotype: Genotype) -> float:
    """The search history's count of parameter-free operations, as a share of all chosen ones."""
    return parameter_free_ops(genotype) / len(genotype.operations())


def search_dynamics(search_fold: Path, retrain_fold: Path) -> dict:
    """The three DARTS-ADP symptoms of one seed's search and retrain (module docstring)."""
    search_fold = Path(search_fold)
    rows = read_history_rows(search_fold / HISTORY_FILE)
    return {"alpha_entropy": [rows[0]["alpha_entropy"], rows[-1]["alpha_entropy"]] if rows else None,
            "parameter_free_share": parameter_free_share(Genotype.load(search_fold / "genotype.json")),
            "search_probe": probe_course(search_fold),
            "retrain_probe": probe_course(retrain_fold)}
