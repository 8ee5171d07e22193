"""Which points of an evolutionary search deserve a Stage-III trial, and which trial result to keep.

The evolution (``nnUNet_IAC_strategy=nsga2``) scores each genotype by the supernet with one-hot cells on
val_search. That score falls with every level given a cell, while Stage III rises with them (DSB2018, paper
regime: 0.8773 for one level down to 0.8674 for six in the supernet, 0.8788 up to 0.8901 after Stage III; the
same trend on Hippocampus; docs/benchmarks.md). Cells with mixture-trained weights perturb their skips once
made one-hot, and Stage III retrains them, so the supernet score is a biased judge of *how many* levels. The
front it builds holds one-level genotypes only. ``nnunet-iac select --from-evolution`` therefore trains one
candidate per number of levels (the point the supernet scored best among those with that many levels, the
cheaper one on a tie) and judges by what Stage III does on val_search; the cost stays the measured table's.

**Choice**: the cheapest candidate (the search's cost measure) whose trial Dice is within a tolerance of the
best trial's, the rule the evolution applies to its own front (``nnUNet_IAC_evolution_tolerance``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from nnunet_iac.cells.genotype import Genotype, GenotypeError
from nnunet_iac.search.evolution import EVOLUTION_FILE
from nnunet_iac.search.placed_genotype import PlacedGenotype
from nnunet_iac.selection.candidates import CandidateError, genotype_key


@dataclass
class EvolutionCandidate:
    """One point of ``evolution.json``: the genotype (its levels among its cell options), its supernet score
    and cost, and where it came from."""

    genotype: Genotype
    levels: tuple[int, ...]
    supernet_dice: float
    cost: float
    index: int
    measure: str

    @property
    def name(self) -> str:
        """Same cell at other levels is another candidate: the levels are part of the name."""
        return f"candidate_{genotype_key(self.genotype)}_levels{'-'.join(map(str, self.levels))}"

    def why(self) -> str:
        return (f"best supernet Dice ({self.supernet_dice:.4f}) of the evolution's points with {len(self.levels)} "
                f"level(s) (levels {', '.join(map(str, self.levels))}; {self.measure} {self.cost:g})")

    def describe(self) -> dict:
        return {"name": self.name, "levels": list(self.levels), "supernet_dice": self.supernet_dice,
                "cost": self.cost, "cost_measure": self.measure, "evolution_point": self.index}


def read_evolution(search_folder: Path) -> dict:
    path = Path(search_folder) / EVOLUTION_FILE
    if not path.is_file():
        raise CandidateError(f"{path} is missing: --from-evolution re-judges the points of an evolutionary search. "
                             f"Search with nnUNet_IAC_strategy=nsga2 (it writes {EVOLUTION_FILE} when the search "
                             f"ends; continue an unfinished one with --c), or leave out --from-evolution to select "
                             f"among the search history's genotypes.")
    try:
        record = json.loads(path.read_text())
    except ValueError as e:
        raise CandidateError(f"{path} is not valid JSON ({e}); search again with nnUNet_IAC_strategy=nsga2.") from None
    if not isinstance(record, dict) or not {"points", "cost_measure"} <= record.keys():
        raise CandidateError(f"{path} is not an evolution record nnunet-iac can read (it needs 'points' and "
                             f"'cost_measure'); search again with nnUNet_IAC_strategy=nsga2.")
    if not record["points"]:
        raise CandidateError(f"{path} holds no scored genotype; search again with nnUNet_IAC_strategy=nsga2.")
    return record


def evolution_candidates(search_folder: Path) -> list[EvolutionCandidate]:
    """One candidate per number of cell levels among the evolution's points, most levels first."""
    record = read_evolution(search_folder)
    measure = record["cost_measure"]
    # the point alpha/beta derived has a cell at every level the evolution chose among
    every_level = tuple(record["points"][record.get("derived", 0)]["levels"])
    best: dict[int, EvolutionCandidate] = {}
    for index, point in enumerate(record["points"]):
        try:
            genotype = Genotype.from_dict(point["genotype"], f"{EVOLUTION_FILE}, point {index}")
        except GenotypeError as e:
            raise CandidateError(str(e)) from e
        # the point's levels as its genotype's cell option: files written before 605b4c7 record every point's
        # genotype with the search's levels ('all'), and a trial of such a genotype would build cells everywhere
        genotype = PlacedGenotype(genotype, tuple(point["levels"])).as_genotype(every_level)
        # as the evolution's own final genotype records it: the levels it chose among, so that a trial run with the
        # search's nnUNet_IAC_levels still set takes the point's levels (settings.explicit_for_genotype)
        origin = {"levels_searched": record.get("levels_searched"), "file": EVOLUTION_FILE, "point": index,
                  "dice": point["dice"]}
        genotype = replace(genotype, meta={**genotype.meta, "evolution": origin})
        candidate = EvolutionCandidate(genotype, tuple(point["levels"]), float(point["dice"]),
                                       float(point[measure]), index, measure)
        held = best.get(len(candidate.levels))
        if held is None or (candidate.supernet_dice, -candidate.cost) > (held.supernet_dice, -held.cost):
            best[len(candidate.levels)] = candidate
    return [best[count] for count in sorted(best, reverse=True)]


def cheapest_within(results: list[dict], tolerance: float) -> dict:
    """The cheapest trial whose Dice is within ``tolerance`` of the best finite one (ties: higher Dice)."""
    scored = [r for r in results if r["val_search_dice"] is not None]
    if not scored:
        raise CandidateError("No trial left a finite val_search Dice; read the trials' train.log files.")
    best = max(r["val_search_dice"] for r in scored)
    near = [r for r in scored if r["val_search_dice"] >= best - tolerance]
    return min(near, key=lambda r: (r["cost"], -r["val_search_dice"]))
