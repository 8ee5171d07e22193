"""``nnunet-iac pareto``: the genotypes of several searches as points of accuracy and cost, the front, and a choice.

A lambda sweep of the cost-aware search (``nnUNet_IAC_strategy=cost`` with several ``nnUNet_IAC_cost_lambda``,
issue 18) gives one genotype per search. Each becomes a point:

- **score**: the genotype's val_search Dice from ``nnunet-iac select`` when the search folder has a
  ``genotype_selection.json`` that trained it; otherwise minus the supernet's nnU-Net validation loss on
  val_search in the search's last epoch (``search_history.json``), a cruder proxy, named in the output;
- **added parameters** and **latency**: the sum over levels of the chosen operations' parameters and measured
  latency (ms at prediction batch 1) from the search's ``operation_costs.json`` (the discrete cell runs its
  operations one after the other), plus each level's ``frame`` row (reductions and projection, which every cell
  pays; tables older than that row lack it and count the operations only).

An evolutionary search (``nnUNet_IAC_strategy=nsga2``) scored many genotypes itself: its folder gives every one of
them (``evolution.json``), scored by its val_search pseudo-Dice on the supernet, with the same cost table.

The **front** keeps the points no other point beats on all three (higher score, fewer parameters, lower
latency, at least one strictly). The **choice** is the best score among the front's points within the limits
the user sets (``--max-latency-ms``, ``--max-added-parameters``); none within them is an error that names the
cheapest point. Written: ``pareto.json`` (every point, the front, the choice) and ``pareto.png``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.search.evolution import EVOLUTION_FILE
from nnunet_iac.search.history import HISTORY_FILE, read_history_rows
from nnunet_iac.search.operation_costs import COST_FILE, OperationCost, cost_rows, genotype_costs
from nnunet_iac.selection.candidates import genotype_key
from nnunet_iac.selection.select_genotype import SELECTION_FILE

GENOTYPE_FILE = "genotype.json"
EVOLUTION_SCORE = "val_search pseudo-Dice on the supernet (nsga2 evolution)"


class ParetoError(RuntimeError):
    """A search folder that cannot become a point, or limits no point meets."""


@dataclass(frozen=True)
class GenotypePoint:
    name: str
    score: float
    score_source: str
    added_parameters: int
    latency_ms: float
    genotype: dict


def _costs(folder: Path) -> list[OperationCost]:
    path = folder / COST_FILE
    if not path.is_file():
        raise ParetoError(f"{folder} has no {COST_FILE}: run the search with nnUNet_IAC_strategy=cost (it measures "
                          f"the operations), or copy the table of a search on the same network and patch size.")
    return cost_rows(json.loads(path.read_text()))


def _score(folder: Path, genotype: Genotype) -> tuple[float, str]:
    selection = folder / SELECTION_FILE
    if selection.is_file():
        for candidate in json.loads(selection.read_text())["candidates"]:
            if genotype_key(Genotype.from_dict(candidate["genotype"])) == genotype_key(genotype) \
                    and candidate["val_search_dice"] is not None:
                return float(candidate["val_search_dice"]), "val_search Dice (nnunet-iac select)"
    rows = read_history_rows(folder / HISTORY_FILE)
    losses = [r["val_loss"] for r in rows if r.get("val_loss") is not None and math.isfinite(r["val_loss"])]
    if not losses:
        raise ParetoError(f"{folder / HISTORY_FILE} has no finite val_loss to score the genotype with; run "
                          f"nnunet-iac select in that folder first.")
    return -float(losses[-1]), "minus the supernet's last val_search loss"


def genotype_point(folder: Path) -> GenotypePoint:
    """The point of one search fold folder (its final ``genotype.json``)."""
    folder = Path(folder)
    genotype = Genotype.load(folder / GENOTYPE_FILE)
    try:
        costs = genotype_costs(_costs(folder), genotype.operations())
    except KeyError as e:
        raise ParetoError(f"{folder / COST_FILE}: {e.args[0]}.") from None
    parameters, latency = int(costs["parameters"]), costs["latency"]
    score, source = _score(folder, genotype)
    return GenotypePoint(str(folder), score, source, parameters, latency, genotype.to_dict())


def evolution_points(folder: Path) -> list[GenotypePoint]:
    """Every genotype an evolutionary search (``nnUNet_IAC_strategy=nsga2``) scored, named ``FOLDER#INDEX``."""
    record = json.loads((Path(folder) / EVOLUTION_FILE).read_text())
    return [GenotypePoint(f"{folder}#{i}", float(p["dice"]), EVOLUTION_SCORE, int(p["parameters"]), float(p["latency"]),
                          p["genotype"]) for i, p in enumerate(record["points"])]


def folder_points(folder: Path) -> list[GenotypePoint]:
    """An evolutionary search's scored genotypes, or the one final genotype of any other search."""
    folder = Path(folder)
    return evolution_points(folder) if (folder / EVOLUTION_FILE).is_file() else [genotype_point(folder)]


def dominates(a: GenotypePoint, b: GenotypePoint) -> bool:
    no_worse = a.score >= b.score and a.added_parameters <= b.added_parameters and a.latency_ms <= b.latency_ms
    better = a.score > b.score or a.added_parameters < b.added_parameters or a.latency_ms < b.latency_ms
    return no_worse and better


def pareto_front(points: list[GenotypePoint]) -> list[GenotypePoint]:
    return [p for p in points if not any(dominates(q, p) for q in points if q is not p)]


def choose(front: list[GenotypePoint], max_latency_ms: float | None = None,
           max_added_parameters: int | None = None) -> GenotypePoint:
    """The best score on the front within the limits."""
    allowed = [p for p in front if (max_latency_ms is None or p.latency_ms <= max_latency_ms)
               and (max_added_parameters is None or p.added_parameters <= max_added_parameters)]
    if not allowed:
        cheapest = min(front, key=lambda p: (p.latency_ms, p.added_parameters))
        raise ParetoError(f"No genotype on the front is within the limits; the cheapest is {cheapest.name} "
                          f"({cheapest.latency_ms:.2f} ms, {cheapest.added_parameters:,} parameters). Loosen the "
                          f"limits or search with a larger nnUNet_IAC_cost_lambda.")
    return max(allowed, key=lambda p: (p.score, -p.latency_ms))


def plot_front(points: list[GenotypePoint], front: list[GenotypePoint], chosen: GenotypePoint, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    on_front = {p.name for p in front}
    for p in points:
        axis.scatter(p.latency_ms, p.score, s=20 + p.added_parameters / max(1, max(q.added_parameters for q in points))
                     * 200, color="tab:blue" if p.name in on_front else "tab:gray", alpha=0.7)
    line = sorted(front, key=lambda p: p.latency_ms)
    axis.plot([p.latency_ms for p in line], [p.score for p in line], color="tab:blue", lw=1)
    axis.scatter([chosen.latency_ms], [chosen.score], marker="*", s=250, color="tab:red", label="chosen")
    axis.set_xlabel("added latency of the cells: operations and frame (ms, prediction batch 1)")
    axis.set_ylabel(chosen.score_source)
    axis.set_title("genotypes (marker size: added parameters); front in blue")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def pareto(folders: list[Path], output: Path, max_latency_ms: float | None = None,
           max_added_parameters: int | None = None) -> dict:
    points = [point for folder in folders for point in folder_points(Path(folder))]
    sources = {p.score_source for p in points}
    if len(sources) > 1:
        raise ParetoError(f"The searches are scored in different ways ({'; '.join(sorted(sources))}); run nnunet-iac "
                          f"select in every folder, or in none, so that the scores compare.")
    front = pareto_front(points)
    chosen = choose(front, max_latency_ms, max_added_parameters)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    record = {"points": [asdict(p) for p in points], "front": [p.name for p in front], "chosen": chosen.name,
              "limits": {"max_latency_ms": max_latency_ms, "max_added_parameters": max_added_parameters}}
    atomic_write_json(output / "pareto.json", record)
    plot_front(points, front, chosen, output / "pareto.png")
    return record
