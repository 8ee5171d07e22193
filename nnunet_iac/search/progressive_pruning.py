"""Progressive operation pruning by stability (the idea of the IAC authors' IAC-LTH), as a search strategy.

IAC-LTH (arXiv 2604.14849) observed that the operations a full IAC search ends with are among the strongest
early on and that each edge's operation-importance distribution settles long before the last epoch; it tests
per edge whether the distribution has stopped changing (a Jensen-Shannon divergence between successive
distributions) and prunes low-importance operations progressively, reporting the full search's Dice at
3.7-16x less search time. The paper's exact thresholds are not public in a form we could use, so this module
states its own rule, written from that description:

- an edge's **importance distribution** is softmax(alpha) over its remaining non-``zero`` operations;
- after every search epoch (not warm-up), its **JS divergence** (base 2, between 0 and 1) to the previous
  epoch's distribution; the edge is **stable** after ``window`` consecutive epochs under ``js_threshold``;
- a stable edge, once ``min_search_epochs`` search epochs have run, **keeps the top half** of its remaining
  operations (rounded up; 7 -> 4 -> 2 -> 1) and starts counting again;
- the search is **finished** when every edge has one operation left (the genotype's operations are fixed;
  the edges are chosen by beta as before). The trainer then stops.

``zero`` is never pruned: it is never computed, and its alpha scales the edge as in PC-DARTS. Pruned
operations get weight 0 (alpha's softmax over the rest) and are not computed any more (on the edges of a node
where an operation is left it runs on those alone, ``cells.edge_slicing``; one it cannot slice, e.g. with a
BatchNorm base, still runs on every edge of that node, weighted 0 where pruned), so iterations get cheaper as
the search prunes. The mask, the
previous distributions and the stability counts are the strategy's checkpointed state: a search continued
with ``--c`` prunes exactly as the uninterrupted one. Every epoch's row of ``search_history.json`` has
``strategy_fields``: operations left, edges pruned this epoch, the JS divergences (median and max).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from nnunet_iac.network.implant import implanted_decoder
from nnunet_iac.search.operation_pruning import OperationPruningStrategy

#: JS divergence (bits) under which an edge's distribution counts as unchanged from one epoch to the next
JS_THRESHOLD = 5e-3
#: consecutive unchanged epochs before an edge is pruned
WINDOW = 2
#: search epochs (after warm-up) before anything is pruned
MIN_SEARCH_EPOCHS = 2


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions over the same outcomes, in bits (0 = equal, 1 = disjoint)."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return max(0.0, (kl(p) + kl(q)) / 2)


def keep_top_half(importance: np.ndarray, active: list[int]) -> list[int]:
    """The ceil(n/2) most important of the ``active`` operations (ties to the lower index)."""
    ranked = sorted(active, key=lambda i: (-importance[i], i))
    return sorted(ranked[:math.ceil(len(active) / 2)])


class ProgressivePruningStrategy(OperationPruningStrategy):
    """PC-DARTS' architecture steps, with stable edges' weakest operations pruned after each search epoch."""

    name = "lth"
    js_threshold = JS_THRESHOLD
    window = WINDOW
    min_search_epochs = MIN_SEARCH_EPOCHS

    def __init__(self):
        super().__init__()
        self.previous = None      # (edges, ops) float: last epoch's importance (0 where pruned)
        self.stable = None        # (edges,) int: consecutive epochs under the threshold

    def setup(self, network: nn.Module, context) -> None:
        super().setup(network, context)
        self.stable = np.zeros(self.num_edges, dtype=int)

    def importance(self) -> np.ndarray:
        """Per edge, softmax(alpha) over its remaining non-zero operations (0 elsewhere): the supernet's own
        masked operation weights without ``zero``, renormalised."""
        weights = implanted_decoder(self.network).iac_architecture.operation_weights().detach().double().cpu()
        weights[:, self.zero_columns] = 0
        return (weights / weights.sum(dim=1, keepdim=True)).numpy()

    def end_epoch(self, searching: bool) -> None:
        if not searching or self.finished():
            self.last_epoch = {}
            return
        self.search_epochs += 1
        now = self.importance()
        divergences, pruned = [], 0
        for edge in range(self.num_edges):
            active = self.active(edge)
            if len(active) <= 1:
                continue
            if self.previous is not None:
                js = js_divergence(now[edge, active], self.previous[edge, active])
                divergences.append(js)
                self.stable[edge] = self.stable[edge] + 1 if js < self.js_threshold else 0
            if self.stable[edge] >= self.window and self.search_epochs >= self.min_search_epochs:
                keep = set(keep_top_half(now[edge], active))
                self.prune(edge, [i for i in active if i not in keep])
                self.stable[edge] = 0
                pruned += 1
        self.apply_mask()
        self.previous = self.importance()
        self.last_epoch = {"operations_left": float(self.operations_left()), "edges_pruned": float(pruned),
                           "js_median": float(np.median(divergences)) if divergences else float("nan"),
                           "js_max": float(np.max(divergences)) if divergences else float("nan")}

    def pruning_state(self) -> dict[str, Any]:
        return {"previous": None if self.previous is None else self.previous.tolist(), "stable": self.stable.tolist()}

    def load_pruning_state(self, state: dict[str, Any]) -> None:
        self.previous = None if state["previous"] is None else np.array(state["previous"], dtype=float)
        self.stable = np.array(state["stable"], dtype=int)
