"""A genotype together with the decoder levels its cells go to: what the evolutionary search breeds when it
also chooses where to implant (``nnUNet_IAC_evolution_levels=on``, issue 18).

Issue 18 measured that cells at two levels instead of four predict faster at the same Dice (1.24-1.39x the
base's time against 1.48-1.57x), and that much of a cell's cost at prediction is its frame, paid whatever its
operations. So the subset of levels is the strongest lever on prediction cost; the evolution searches it with
the operations instead of leaving it to a setting. The supernet has cells at every candidate level; a subset
is scored by letting the other levels concatenate as the base does (``implant.cells_at``).

Operators keep a candidate valid: the levels are a non-empty subset of the supernet's, in ascending order.

- ``mutate_placed``: with chance ``LEVEL_SHARE`` (when there is more than one level) one level is added or
  removed (never the last one), else the genotype mutates (``genotype_operators.mutate``);
- ``crossover_placed``: the genotypes cross as before; each level is taken from one parent or the other (the
  first parent's levels when that leaves none);
- ``placed_features``: the genotype's features followed by a 0/1 mask of the levels (the surrogate's input).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nnunet_iac.cells.genotype import Genotype
from nnunet_iac.search.genotype_operators import crossover, features, mutate

#: chance that a mutation moves the levels rather than an operation or a source
LEVEL_SHARE = 0.25


@dataclass(frozen=True)
class PlacedGenotype:
    """``genotype``'s cells at decoder ``levels`` (stage numbers, 0 the lowest resolution)."""
    genotype: Genotype
    levels: tuple[int, ...]

    def __post_init__(self):
        if not self.levels or tuple(sorted(set(self.levels))) != tuple(self.levels):
            raise ValueError(f"levels {self.levels} must be a non-empty ascending tuple of distinct decoder levels.")

    def as_genotype(self, every_level: tuple[int, ...]) -> Genotype:
        """The genotype as Stage III builds it: its ``levels`` cell option names these levels (left as the search
        set it when they are all of ``every_level``), so any point of the front can be retrained on its own."""
        if tuple(self.levels) == tuple(every_level) or self.genotype.cell_options is None:
            return self.genotype
        return replace(self.genotype, cell_options={**self.genotype.cell_options,
                                                    "levels": ",".join(map(str, self.levels))})


def random_levels(levels: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    """A uniformly drawn non-empty subset of ``levels``."""
    while True:
        kept = tuple(level for level in levels if rng.random() < 0.5)
        if kept:
            return kept


def mutate_placed(candidate: PlacedGenotype, rng: np.random.Generator, space: tuple[str, ...],
                  levels: tuple[int, ...]) -> PlacedGenotype:
    if len(levels) > 1 and rng.random() < LEVEL_SHARE:
        level = levels[int(rng.integers(len(levels)))]
        if level in candidate.levels and len(candidate.levels) > 1:
            moved = tuple(x for x in candidate.levels if x != level)
        elif level in candidate.levels:  # the only level left: move it instead of leaving no cell
            moved = (levels[(levels.index(level) + 1 + int(rng.integers(len(levels) - 1))) % len(levels)],)
        else:
            moved = tuple(sorted(candidate.levels + (level,)))
        return PlacedGenotype(candidate.genotype, moved)
    return PlacedGenotype(mutate(candidate.genotype, rng, space), candidate.levels)


def crossover_placed(first: PlacedGenotype, second: PlacedGenotype, rng: np.random.Generator) -> PlacedGenotype:
    genotype = crossover(first.genotype, second.genotype, rng)
    both = sorted(set(first.levels) | set(second.levels))
    kept = tuple(level for level in both if (level in first.levels if rng.random() < 0.5 else level in second.levels))
    return PlacedGenotype(genotype, kept or first.levels)


def placed_features(candidate: PlacedGenotype, operation_names: tuple[str, ...],
                    levels: tuple[int, ...]) -> np.ndarray:
    mask = np.array([level in candidate.levels for level in levels], dtype=float)
    return np.concatenate([features(candidate.genotype, operation_names), mask])
