"""Multi-objective evolutionary cell search (``nnUNet_IAC_strategy=nsga2``, issue 18): a front of genotypes
trading val_search Dice against what the cells cost at prediction, and one chosen from it.

After EMONAS-Net (``../shared/papers/emonas-net-talk.txt``: segmentation error and model size as two
objectives, an evolutionary algorithm, a random-forest surrogate that spares evaluations), on nnunet-iac's
one-shot supernet:

1. **Supernet**: the search epochs run as PC-DARTS (the cell weights learn on train_search, alpha and beta on
   val_search), so the shared cell weights are trained for every operation.
2. **Evolution**, once, when the search ends (last epoch, early stop, or a ``--c`` of a finished search that
   has not evolved yet): NSGA-II (``search/nsga2``) over discrete genotypes of the search space, starting from
   the genotype alpha/beta derive and ``population - 1`` random ones. The **objectives** of a genotype are
   ``1 - Dice``, its pseudo-Dice (nnU-Net's online Dice: true/false positives and false negatives summed over
   ``nnUNet_IAC_evolution_batches`` fixed val_search batches without augmentation, averaged over the foreground
   classes) computed by the supernet with only that genotype's operations (``one_hot.genotype_forward``), and
   its **cost**: the sum over the cells' levels of its operations' and the cell frame's cost in
   ``nnUNet_IAC_cost_measure`` from the measured table ``operation_costs.json`` (latency at prediction batch 1
   by default). With ``nnUNet_IAC_evolution_levels=on`` (the default) a candidate is a genotype *and* the
   subset of the supernet's levels that gets cells (``placed_genotype``): the other levels concatenate as the
   base does while it is scored, and cost nothing. Each generation breeds 2 x population children; a random
   forest fitted on every candidate scored so far keeps the quarter it ranks best, which are scored. The
   supernet without any cell (the base) is scored once too, as a reference the front can be read against.
3. **Choice**: among the final front, the cheapest genotype whose Dice is within
   ``nnUNet_IAC_evolution_tolerance`` (Dice, 0 to 1) of the front's best; 0 picks the most accurate.

Everything is written to ``evolution.json`` in the fold folder (every scored genotype with its Dice, parameters,
FLOPs and latency, the front, the choice, the rule, which point alpha/beta derived, generations and wall time) and kept in the checkpoint, so
the final ``genotype.json`` is the chosen one and ``nnunet-iac pareto`` can plot the front.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nnunet_iac.cells.genotype import CELL_OPTION_NAMES, Genotype
from nnunet_iac.common.atomic_io import atomic_write_json
from nnunet_iac.network.implant import cells_at, implanted_decoder
from nnunet_iac.search.nsga2 import Surrogate, evolve, non_dominated_fronts
from nnunet_iac.search.one_hot import genotype_forward
from nnunet_iac.search.operation_costs import MEASURES, genotype_costs, load_or_measure_costs
from nnunet_iac.search.placed_genotype import (PlacedGenotype, crossover_placed, mutate_placed, placed_features,
                                               random_levels)
from nnunet_iac.search.pc_darts import PCDartsStrategy
from nnunet_iac.search.random_genotype import random_genotype
from nnunet_iac.search.strategy import ArchitectureView

EVOLUTION_FILE = "evolution.json"
#: children bred per generation, as a multiple of the population (the surrogate screens them)
OFFSPRING_FACTOR = 2
#: share of the bred children the surrogate lets through to be scored
EVALUATE_SHARE = 0.25


def pseudo_dice(outputs: list[dict]) -> float:
    """nnU-Net's online Dice over several validation steps: tp, fp, fn summed per class, then the mean over the
    classes that occur (in the prediction or the reference)."""
    tp, fp, fn = (np.sum([np.asarray(o[key], dtype=float) for o in outputs], axis=0)
                  for key in ("tp_hard", "fp_hard", "fn_hard"))
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    return float(np.mean(2 * tp[present] / denominator[present])) if present.any() else 0.0


def choose_from_front(dice: list[float], cost: list[float], front: list[int], tolerance: float) -> int:
    """The cheapest member of ``front`` whose Dice is within ``tolerance`` of the front's best (ties: higher
    Dice, then the lower index)."""
    best = max(dice[i] for i in front)
    near = [i for i in front if dice[i] >= best - tolerance]
    return min(near, key=lambda i: (cost[i], -dice[i], i))


class EvolutionStrategy(PCDartsStrategy):
    name = "nsga2"
    ddp_refusal = ("its evolution scores genotypes on each rank's own val_search batches, so the ranks could "
                   "choose different genotypes, and each would write evolution.json.")

    def __init__(self):
        super().__init__()
        self.options = {}
        self.output_folder = None
        self.cost_rows = None
        self.result = None   # evolution.json's content once evolved (JSON-friendly, checkpointed)

    def setup(self, network: nn.Module, context) -> None:
        super().setup(network, context)
        if context.patch_size is None or context.output_folder is None:
            raise ValueError("The evolutionary search measures its operations on a prediction patch and caches them in "
                             "the fold folder; the trainer must pass patch_size and output_folder.")
        if implanted_decoder(network).iac_architecture.branching:
            raise ValueError("nnUNet_IAC_strategy=nsga2 does not evolve the branches of nnUNet_IAC_branching=on yet; "
                             "search with branching off, or with another strategy (pcdarts, lth, shapley, cost).")
        self.options = dict(context.options)
        self.output_folder = Path(context.output_folder)
        self.cost_rows = load_or_measure_costs(self.output_folder, network, context.patch_size, context.device)

    def end_search(self, evaluate: Callable[[dict], dict], next_batch: Callable[[], dict]) -> None:
        if self.result is not None:
            return
        started = time.time()
        options = self.options
        batches = [next_batch() for _ in range(int(options["evolution_batches"]))]
        decoder = implanted_decoder(self.network)
        names = tuple(decoder.iac_cells[0].operation_names)
        levels = tuple(decoder.iac_cell_levels)
        evolve_levels = options["evolution_levels"] == "on"
        measure = options["cost_measure"]
        costs: dict[PlacedGenotype, dict[str, float]] = {}
        dice: dict[PlacedGenotype, float] = {}

        def val_search_dice(genotype: Genotype, where: tuple[int, ...]) -> float:
            with torch.no_grad(), genotype_forward(self.network, genotype), cells_at(self.network, where):
                return pseudo_dice([evaluate({"data": b["data"], "target": _copy(b["target"])}) for b in batches])

        def score(candidate: PlacedGenotype) -> tuple[float, float]:
            dice[candidate] = val_search_dice(candidate.genotype, candidate.levels)
            costs[candidate] = genotype_costs(self.cost_rows, candidate.genotype.operations(), candidate.levels)
            return 1.0 - dice[candidate], costs[candidate][measure]

        with torch.no_grad():  # alpha/beta's genotype, with the search space the children are drawn from
            template = self.current({}, {name: options[name] for name in CELL_OPTION_NAMES}).genotype
        seed = int(options["seed"])
        population = int(options["evolution_population"])
        rng = np.random.default_rng(seed)
        initial = [PlacedGenotype(template, levels)] + [
            PlacedGenotype(replace(random_genotype(template, seed + i), meta={}),
                           random_levels(levels, rng) if evolve_levels else levels) for i in range(1, population)]
        movable = levels if evolve_levels else ()
        result = evolve(initial, score, lambda c, r: mutate_placed(c, r, names, movable), crossover_placed,
                        int(options["evolution_generations"]), rng,
                        features=lambda c: placed_features(c, names, levels), surrogate=Surrogate(seed=seed),
                        evaluate_share=EVALUATE_SHARE, offspring_factor=OFFSPRING_FACTOR)
        base_dice = val_search_dice(template, ())
        self.result = self.record(result, dice, costs, measure, time.time() - started, len(batches), base_dice,
                                  levels)
        atomic_write_json(self.output_folder / EVOLUTION_FILE, self.result)

    def record(self, result, dice: dict, costs: dict, measure: str, seconds: float, batches: int,
               base_dice: float, every_level: tuple[int, ...]) -> dict[str, Any]:
        """Every scored candidate (its genotype with its levels as a cell option, retrainable as it is), the front
        of all of them and the choice, as ``evolution.json`` holds them."""
        points = []
        for evaluated in result.scored:
            candidate = evaluated.candidate
            points.append({"genotype": candidate.as_genotype(every_level).to_dict(), "levels": list(candidate.levels),
                           "dice": dice[candidate], **{m: costs[candidate][m] for m in MEASURES}})
        objectives = [(1 - p["dice"], p[measure]) for p in points]
        front = non_dominated_fronts(objectives)[0]
        tolerance = float(self.options["evolution_tolerance"])
        chosen = choose_from_front([p["dice"] for p in points], [p[measure] for p in points], front, tolerance)
        return {"objectives": ["1 - val_search pseudo-Dice", measure], "cost_measure": measure,
                "batches": batches, "population": len(result.population), "generations": len(result.history),
                "evaluations": result.evaluations, "seconds": seconds,
                "rule": f"cheapest on the front within {tolerance} Dice of its best (nnUNet_IAC_evolution_tolerance)",
                "levels_searched": self.options["levels"] if self.options["evolution_levels"] == "on" else None,
                "base_dice": base_dice,  # the supernet with no cell at any level: the base on the same batches
                "points": points, "front": front, "chosen": chosen,
                "derived": 0,  # the first genotype scored is alpha/beta's (what PC-DARTS alone would have chosen)
                "history": [{"generation": h["generation"], "evaluations": h["evaluations"],
                             "front": h["front"]} for h in result.history]}

    def current(self, meta: dict[str, Any], cell_options: dict[str, Any]) -> ArchitectureView:
        view = super().current(meta, cell_options)
        if self.result is None:
            return view
        chosen = self.result["points"][self.result["chosen"]]
        evolved = Genotype.from_dict(chosen["genotype"])
        summary = {"dice": chosen["dice"], "base_dice": self.result.get("base_dice"),
                   "cost_measure": self.result["cost_measure"], "cost": chosen[self.result["cost_measure"]],
                   "front_size": len(self.result["front"]), "evaluations": self.result["evaluations"],
                   "levels_searched": self.result.get("levels_searched"), "file": EVOLUTION_FILE}
        options = view.genotype.cell_options
        if options is not None and evolved.cell_options is not None:  # the chosen point's levels
            options = {**options, "levels": evolved.cell_options["levels"]}
        genotype = replace(view.genotype, nodes=evolved.nodes, concat=evolved.concat, cell_options=options,
                           meta={**view.genotype.meta, "evolution": summary})
        return ArchitectureView(genotype, view.op_weights, view.edge_weights, view.operation_names)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "evolution": self.result}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.result = state.get("evolution")


def _copy(target):
    """validation_step writes into the target where there is an ignore label; a scored batch is reused."""
    return [t.clone() for t in target] if isinstance(target, list) else target.clone()

