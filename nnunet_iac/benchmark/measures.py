"""Numbers the benchmark derives from what nnU-Net and nnunet-iac leave in their model folders.

- Iteration time: nnU-Net logs the start and end of every epoch in its checkpoint ('logging'). The
  time per training iteration of a run is the median over its epochs (the first one, which warms up
  loaders and allocators, left out; for the search only epochs after the warm-up, where an iteration
  is one alpha/beta batch plus one cell batch) of epoch time / iterations per epoch. It includes
  data loading, the epoch's few monitoring batches and checkpoint writes, alike in both runs.
- Iterations the IAC arm used: from the search's own per-epoch history (warm-up and search epochs
  actually run, early stop included) and the retrain's epoch count.
- Parameters: the retrained model folder's plans rebuild the implanted network (as nnUNetv2_predict
  does); the search supernet's extra tensors are counted from its checkpoint.
- Genotype agreement between seeds, between two strategies on one seed, the search epoch from which a
  search's genotype stopped changing, and the spread of Dice over seeds.
"""
from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.network.implant import is_base_key
from nnunet_iac.cells.operations import OPERATIONS, ZERO
from nnunet_iac.search.history import HISTORY_FILE, read_history_rows
from nnunet_iac.search.signal_history import SIGNAL_HISTORY_FILE, load_signal_rows
from nnunet_iac.nnunet.model_folder import model_folder_parameters


def epoch_seconds(checkpoint: dict) -> list[float]:
    log = checkpoint["logging"]
    return [end - start for start, end in zip(log["epoch_start_timestamps"], log["epoch_end_timestamps"])]


def seconds_per_iteration(checkpoint: dict, iterations_per_epoch: int, first_epoch: int = 0) -> float | None:
    """Median epoch time / iterations over epochs >= max(first_epoch, 1); None if no such epoch."""
    every_epoch = epoch_seconds(checkpoint)
    seconds = every_epoch[max(first_epoch, 1):] or every_epoch[first_epoch:]
    return statistics.median(seconds) / iterations_per_epoch if seconds else None


def mean_seconds_per_iteration(checkpoint: dict, iterations_per_epoch: int, first_epoch: int = 0) -> float | None:
    """Mean epoch time / iterations over every epoch from ``first_epoch`` on: for a pruning search, whose
    iterations get cheaper as it prunes, the mean is what the whole search cost (issue 16), the median is not."""
    seconds = epoch_seconds(checkpoint)[first_epoch:]
    return statistics.mean(seconds) / iterations_per_epoch if seconds else None


def search_epochs_run(search_fold: Path) -> dict[str, int]:
    """Warm-up and search epochs the search actually ran (from search_history.json)."""
    history = json.loads((search_fold / "search_history.json").read_text())
    return {"warmup": sum(r["phase"] == "warmup" for r in history),
            "search": sum(r["phase"] == "search" for r in history)}


def iac_batches(search_epochs: dict[str, int], retrain_epochs: int, iterations_per_epoch: int) -> dict[str, int]:
    """Training batches the IAC arm consumed: a warm-up or retrain iteration one, a search iteration two."""
    warmup = search_epochs["warmup"] * iterations_per_epoch
    search = search_epochs["search"] * iterations_per_epoch
    retrain = retrain_epochs * iterations_per_epoch
    return {"warmup_iterations": warmup, "search_iterations": search, "retrain_iterations": retrain,
            "batches": warmup + 2 * search + retrain}


def selected_batches(iac: dict[str, int], searches: int, trials: int, trial_batches: int) -> dict:
    """Training batches behind ``iac_selected``: every seed's search (the histories its candidates come from),
    one Stage-III trial per candidate and its own retrain, beside one IAC seed's search and retrain (``iac``, from
    ``iac_batches``), which is what the controls are sized from (issue 37: said beside its rows)."""
    one_search = iac["warmup_iterations"] + 2 * iac["search_iterations"]
    total = searches * one_search + trials * trial_batches + iac["retrain_iterations"]
    return {"searches": searches, "trials": trials, "batches": total, "times_iac": total / iac["batches"]}


def implanted_parameters(model_folder: Path, configuration: str) -> dict[str, int]:
    """Base and cell parameters of a retrained IAC model, rebuilt from its plans.json."""
    base, added = model_folder_parameters(model_folder, configuration)
    return {"base": base, "added_by_cells": added}


def supernet_parameters(search_checkpoint: dict) -> int:
    return sum(t.numel() for k, t in search_checkpoint["network_weights"].items() if not is_base_key(k))


def _choices(genotype: Genotype) -> list[set]:
    return [set(node) for node in genotype.nodes]


def shared_choices(a: Genotype, b: Genotype) -> tuple[float, float]:
    """The fractions of ``a``'s chosen (node, source) edges, and of its (node, source, op) choices, that ``b``
    makes too."""
    total = sum(len(node) for node in a.nodes)
    same_ops = sum(len(x & y) for x, y in zip(_choices(a), _choices(b)))
    same_edges = sum(len({s for _, s in x} & {s for _, s in y}) for x, y in zip(a.nodes, b.nodes))
    return same_edges / total, same_ops / total


def genotype_agreement(genotypes: list[Genotype]) -> dict | None:
    """Mean over seed pairs of the fraction of chosen (node, source) edges, and (node, source, op) choices,
    that both genotypes share. None for fewer than two genotypes."""
    if len(genotypes) < 2:
        return None
    return {**_mean_shares(shared_choices(a, b) for a, b in itertools.combinations(genotypes, 2)),
            **chance_agreement(genotypes[0])}


def _mean_shares(shares) -> dict:
    """Pairs, mean shared edges and choices, and identical pairs, from (edges, choices) shares per pair."""
    edges, ops = zip(*shares)
    return {"pairs": len(edges), "edges": statistics.mean(edges), "edges_and_ops": statistics.mean(ops),
            "identical_genotypes": sum(x == 1.0 for x in ops)}


def pairwise_agreement(genotypes: list[Genotype], references: list[Genotype]) -> dict | None:
    """Mean over seeds of the choices a strategy's genotype shares with the reference strategy's genotype of the
    same seed (same base, same seed, same data order): whether pruning finds the cell the full search finds,
    which is IAC-LTH's claim (issue 16). None without a pair."""
    if not genotypes or len(genotypes) != len(references):
        return None
    return _mean_shares(shared_choices(g, r) for g, r in zip(genotypes, references))


def genotype_settling(search_fold: Path) -> dict | None:
    """How the search's genotype reached its final form, from search_history.json: per search epoch, the share
    of the final genotype's (node, source, op) choices that epoch's genotype already made, and the search epoch
    (1-based) from which it made all of them. IAC-LTH prunes on the early ranking; it can find the full
    search's cell only if the early genotypes already hold most of it (issue 16). None before a search epoch."""
    rows = read_history_rows(search_fold / HISTORY_FILE)
    searched = [Genotype.from_dict(r["genotype"], f"{search_fold / HISTORY_FILE}, epoch {r['epoch']}")
                for r in rows if r["phase"] == "search"]
    if not searched:
        return None
    shares = [shared_choices(searched[-1], g)[1] for g in searched]
    settled = len(shares)
    while settled > 1 and shares[settled - 2] == 1.0:
        settled -= 1
    return {"search_epochs": len(shares), "settled_at": settled, "share_of_final": shares}


def chance_agreement(genotype: Genotype, operations: int = sum(op != ZERO for op in OPERATIONS)) -> dict:
    """The agreement two genotypes of this shape would have if drawn at random: per node, k of its n sources
    uniformly (expected k*k/n shared) and one of the ``operations`` non-zero operations per edge.

    Agreement means something only above this: many edges are shared by chance (node 2 has only two
    sources to choose from)."""
    topology = genotype.topology
    shared = [len(node) ** 2 / len(topology.node_inputs(i)) for i, node in enumerate(genotype.nodes)]
    total = sum(len(node) for node in genotype.nodes)
    return {"chance_edges": sum(shared) / total, "chance_edges_and_ops": sum(shared) / total / operations}


def spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"n": len(values), "mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


# signal_monitor's SNR is ~1 for pure noise; 2 means a mean gradient clearly above its noise (SNR^2 ~ 1 + n mu^2/var)
SNR_THRESHOLDS = (1.0, 2.0)


def _snr_share(values: list) -> dict:
    """Median SNR and the share of epochs above each threshold; epochs without a value (None) are left out."""
    values = [v for v in values if v is not None]
    if not values:
        return {"epochs": 0, "median": None, **{f"above_{t:g}": None for t in SNR_THRESHOLDS}}
    return {"epochs": len(values), "median": statistics.median(values),
            **{f"above_{t:g}": sum(v > t for v in values) / len(values) for t in SNR_THRESHOLDS}}


def signal_summary(search_fold: Path, retrain_fold: Path, warmup_epochs: int) -> dict:
    """Did the search and the retrain get gradient signal? (issue 13's criterion: SNR above the noise floor in
    most epochs after warm-up). From search_history.json and the retrain's signal_history.json."""
    history = json.loads((Path(search_fold) / "search_history.json").read_text())
    searched = [r for r in history if r["epoch"] >= warmup_epochs]
    levels = len(history[0].get("snr_projection") or [])
    retrain = load_signal_rows(Path(retrain_fold) / SIGNAL_HISTORY_FILE)

    def per_level(rows):
        return [_snr_share([(r.get("snr_projection") or [None] * levels)[level] for r in rows])
                for level in range(levels)]

    return {
        "search": {"alpha": _snr_share([r.get("snr_alpha") for r in searched]),
                   "beta": _snr_share([r.get("snr_beta") for r in searched]),
                   "projection": per_level(searched),
                   "alpha_entropy": [history[0]["alpha_entropy"], history[-1]["alpha_entropy"]],
                   "projection_norm_last": history[-1].get("projection_norm")},
        "retrain": {"projection": per_level(retrain),
                    "projection_norm_last": retrain[-1].get("projection_norm") if retrain else None},
    }
