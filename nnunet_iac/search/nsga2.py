"""NSGA-II over discrete candidates, with an optional surrogate that screens offspring (issue 18).

EMONAS-Net (``../shared/papers/emonas-net-talk.txt``) searches for segmentation error and network size at
once with an evolutionary algorithm whose expensive evaluations are screened by a random-forest surrogate;
Bractivate evolves skip connections. The algorithm here is NSGA-II (Deb et al. 2002) as its paper describes
it, written for candidates of any type (genotypes in nnunet-iac), every objective minimised:

- **non-dominated sorting**: front 1 is the candidates no other dominates (at least as good in every
  objective, better in one); front k the candidates dominated only by fronts < k;
- **crowding distance**: within a front, per objective, the normalised gap between a candidate's two
  neighbours (the extremes infinite), summed: a front keeps its spread;
- **survival**: parents and offspring together, fronts taken whole in order, the last one cut by crowding
  distance, largest first; **parents** by binary tournament (lower front, then larger crowding distance).

The **surrogate** (optional; EMONAS' idea): before an offspring is evaluated, a regressor fitted on every
evaluation so far predicts its objectives; only the ``evaluate_share`` of offspring it ranks best (by the same
sorting) are evaluated, the rest are dropped. Evaluations are cached by the candidate's key, so a candidate
met twice costs once. Everything random draws from the one ``numpy`` generator given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` at least as good as ``b`` in every objective and better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated_fronts(objectives: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``objectives`` by front (front 0 first), each front in index order."""
    n = len(objectives)
    dominated_by = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(objectives[i], objectives[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(objectives[j], objectives[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(sorted(current))
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding_distance(objectives: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """Per member of ``front``: the sum over objectives of the normalised gap between its two neighbours."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for m in range(len(objectives[front[0]])):
        ordered = sorted(front, key=lambda i: objectives[i][m])
        low, high = objectives[ordered[0]][m], objectives[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, here, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[here] += (objectives[after][m] - objectives[before][m]) / (high - low)
    return distance


def rank_and_crowding(objectives: Sequence[Sequence[float]]) -> tuple[list[int], list[float]]:
    """Front number and crowding distance of every candidate."""
    rank, crowd = [0] * len(objectives), [0.0] * len(objectives)
    for r, front in enumerate(non_dominated_fronts(objectives)):
        for i, d in crowding_distance(objectives, front).items():
            rank[i], crowd[i] = r, d
    return rank, crowd


def survivors(objectives: Sequence[Sequence[float]], size: int) -> list[int]:
    """NSGA-II's environmental selection of ``size`` indices."""
    chosen = []
    for front in non_dominated_fronts(objectives):
        if len(chosen) + len(front) <= size:
            chosen += front
            continue
        crowd = crowding_distance(objectives, front)
        chosen += sorted(front, key=lambda i: (-crowd[i], i))[:size - len(chosen)]
        break
    return chosen


def tournament(rank: list[int], crowd: list[float], rng: np.random.Generator) -> int:
    a, b = (int(i) for i in rng.integers(0, len(rank), size=2))
    if rank[a] != rank[b]:
        return a if rank[a] < rank[b] else b
    return a if crowd[a] >= crowd[b] else b


@dataclass
class Evaluated(Generic[T]):
    candidate: T
    objectives: tuple[float, ...]


@dataclass
class EvolutionResult(Generic[T]):
    population: list[Evaluated[T]]
    front: list[Evaluated[T]]
    evaluations: int
    history: list[dict] = field(default_factory=list)
    scored: list[Evaluated[T]] = field(default_factory=list)  # every candidate evaluated, in the order it was


class Surrogate:
    """A random forest per objective on the candidates' feature vectors (EMONAS' surrogate)."""

    def __init__(self, seed: int = 0, trees: int = 50):
        self.seed, self.trees = seed, trees
        self.models = None

    def fit(self, features: np.ndarray, objectives: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor
        self.models = [RandomForestRegressor(n_estimators=self.trees, random_state=self.seed).fit(features, column)
                       for column in np.asarray(objectives, dtype=float).T]

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.stack([model.predict(features) for model in self.models], axis=1)


def evolve(initial: list[T], evaluate: Callable[[T], Sequence[float]], mutate: Callable[[T, np.random.Generator], T],
           crossover: Callable[[T, T, np.random.Generator], T], generations: int, rng: np.random.Generator,
           key: Callable[[T], Hashable] = lambda c: c, features: Callable[[T], np.ndarray] | None = None,
           surrogate: Surrogate | None = None, evaluate_share: float = 0.5,
           offspring_factor: int = 1) -> EvolutionResult[T]:
    """NSGA-II from ``initial`` (its size is the population size) for ``generations``; every objective
    minimised. With a ``surrogate`` (and ``features``), ``offspring_factor`` x population offspring are bred each
    generation and only the ``evaluate_share`` the surrogate ranks best are evaluated."""
    cache: dict[Hashable, Evaluated[T]] = {}

    def score(candidate: T) -> Evaluated[T]:
        k = key(candidate)
        if k not in cache:
            cache[k] = Evaluated(candidate, tuple(float(v) for v in evaluate(candidate)))
        return cache[k]

    population = [score(c) for c in initial]
    size = len(population)
    history = []
    for generation in range(generations):
        rank, crowd = rank_and_crowding([p.objectives for p in population])
        bred = []
        for _ in range(size * (offspring_factor if surrogate else 1)):
            a, b = tournament(rank, crowd, rng), tournament(rank, crowd, rng)
            bred.append(mutate(crossover(population[a].candidate, population[b].candidate, rng), rng))
        if surrogate is not None and features is not None and len(cache) >= 2:
            known = list(cache.values())
            surrogate.fit(np.stack([features(e.candidate) for e in known]), np.array([e.objectives for e in known]))
            predicted = surrogate.predict(np.stack([features(c) for c in bred]))
            keep = survivors(predicted.tolist(), max(1, round(evaluate_share * len(bred))))
            bred = [bred[i] for i in sorted(keep)]
        offspring = [score(c) for c in bred]
        pool = population + offspring
        population = [pool[i] for i in survivors([p.objectives for p in pool], size)]
        front = [population[i] for i in non_dominated_fronts([p.objectives for p in population])[0]]
        history.append({"generation": generation, "evaluations": len(cache),
                        "front": [list(p.objectives) for p in front]})
    front = [population[i] for i in non_dominated_fronts([p.objectives for p in population])[0]]
    return EvolutionResult(population, front, len(cache), history, list(cache.values()))
