"""NSGA-II (nnunet_iac/search/nsga2.py, issue 18): sorting and crowding by hand, and the loop on toy problems whose
Pareto front is known, with and without the surrogate."""
import math

import numpy as np
import pytest

from nnunet_iac.search.nsga2 import (Surrogate, crowding_distance, dominates, evolve, non_dominated_fronts,
                                     survivors)


def test_fronts_and_crowding_by_hand():
    points = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2, 3)]
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (2, 1)) and not dominates((2, 3), (2, 3))
    assert non_dominated_fronts(points) == [[0, 1, 3, 5], [2], [4]]
    crowd = crowding_distance([(0, 4), (1, 2), (2, 1), (4, 0)], [0, 1, 2, 3])
    assert crowd[0] == crowd[3] == math.inf
    assert crowd[1] == pytest.approx((2 - 0) / 4 + (4 - 1) / 4) and crowd[2] == pytest.approx(3 / 4 + 2 / 4)
    # survival takes front 0 whole, then the most isolated of front 1
    assert survivors([(0, 4), (4, 0), (1, 5), (3, 5), (5, 1)], 3)[:2] == [0, 1]


N_BITS = 8


def _toy(bits):
    """Two objectives over 8-bit strings: ones (x) and 8 - ones + 2 x (misplaced ones). Its Pareto front is
    exactly the 9 strings 1..10..0 (ones packed to the left), with objectives (k, 8 - k)."""
    ones = sum(bits)
    misplaced = sum(bits[ones:])
    return ones, N_BITS - ones + 2 * misplaced


def _mutate(bits, rng):
    i = int(rng.integers(0, N_BITS))
    return bits[:i] + (1 - bits[i],) + bits[i + 1:]


def _crossover(a, b, rng):
    cut = int(rng.integers(1, N_BITS))
    return a[:cut] + b[cut:]


@pytest.mark.parametrize("use_surrogate", [False, True])
def test_the_loop_finds_the_known_front_of_a_toy_problem(use_surrogate):
    rng = np.random.default_rng(0)
    initial = [tuple(int(b) for b in rng.integers(0, 2, N_BITS)) for _ in range(16)]
    evaluated = []

    def evaluate(bits):
        evaluated.append(bits)
        return _toy(bits)

    result = evolve(initial, evaluate, _mutate, _crossover, generations=40, rng=rng,
                    features=lambda bits: np.array(bits, dtype=float),
                    surrogate=Surrogate(seed=0, trees=20) if use_surrogate else None, offspring_factor=2)
    true_front = {(k, N_BITS - k) for k in range(N_BITS + 1)}
    found = {e.objectives for e in result.front}
    assert found <= true_front and len(found) >= 7
    assert len(evaluated) == len(set(evaluated)) == result.evaluations  # every candidate evaluated once
    assert [h["generation"] for h in result.history] == list(range(40))


def test_the_surrogate_screens_offspring_so_fewer_candidates_are_evaluated():
    counts = {}
    for name, surrogate in (("plain", None), ("surrogate", Surrogate(seed=0, trees=10))):
        rng = np.random.default_rng(1)
        initial = [tuple(int(b) for b in rng.integers(0, 2, N_BITS)) for _ in range(12)]
        result = evolve(initial, _toy, _mutate, _crossover, generations=10, rng=rng,
                        features=lambda bits: np.array(bits, dtype=float), surrogate=surrogate, evaluate_share=0.25)
        counts[name] = result.evaluations
    assert counts["surrogate"] < counts["plain"]
