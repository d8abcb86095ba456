"""Auto-Keras's Bayesian optimisation over morphisms: a GP on networks, and annealing.

`kerasnas.oracles.MorphismOracle` (mode `"bayesian"`) fits `GaussianProcess`
to the trained networks and lets `best_child` search sequences of morphisms
for the child of highest upper-confidence bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from kerasnas.morph.descriptor import Descriptor, describe, distance


def best_child(
    gp: GaussianProcess,
    trained: list[Any],
    graph: Callable[[Any], Any],
    descriptor: Callable[[Any], Descriptor],
    grow: Callable[..., tuple[Any, list[str]] | None],
    rng: np.random.Generator,
    *,
    num_candidates: int,
    max_ops: int,
    temperature: float,
    cooling: float,
) -> tuple[Any, list[str]] | None:
    """Simulated annealing from the trained networks to the child of highest UCB.

    Args:
        gp: The GP fitted to the trained networks.
        trained: The trained trials (the starting points).
        graph: A trial's morph graph.
        descriptor: A trial's network descriptor.
        grow: `grow(parent, graph, ops, count, rng)`: `count` random
            morphisms on top of `graph` (the parent's plus `ops`), as
            `(child graph, ops)`, or None when they give nothing new.
        rng: The random generator.
        num_candidates: Children evaluated before the search stops.
        max_ops: Most morphisms a child adds to its trained parent.
        temperature: The annealing's initial temperature.
        cooling: Factor of the temperature after each expansion.

    Returns:
        `(parent trial, ops)` of the best child found, or None.
    """
    counter = itertools.count()
    heap: list[tuple[float, int, Any, Any, list[str]]] = []
    for trial in trained:
        own = gp.ucb(descriptor(trial))
        heapq.heappush(heap, (-own, next(counter), trial, graph(trial), []))
    best: tuple[float, Any, list[str]] | None = None
    evaluated = 0
    while heap and evaluated < num_candidates:
        negative, _, parent, parent_graph, ops = heapq.heappop(heap)
        if len(ops) >= max_ops:
            continue
        for _ in range(3):  # Neighbours of each expanded network.
            found = grow(parent, parent_graph, ops, 1, rng)
            if found is None:
                continue
            child_graph, child_ops = found
            value = gp.ucb(describe(child_graph))
            evaluated += 1
            if best is None or value > best[0]:
                best = (value, parent, child_ops)
            delta = value + negative
            if delta > 0 or rng.random() < math.exp(delta / temperature):
                heapq.heappush(heap, (-value, next(counter), parent, child_graph, child_ops))
        temperature = max(temperature * cooling, 1e-3)
    return None if best is None else (best[1], best[2])


def fit(
    trained: list[Any],
    descriptor: Callable[[Any], Descriptor],
    distances: dict[tuple[str, str], float],
    maximize: bool,
    beta: float,
) -> GaussianProcess:
    """The GP of the trained trials' scores (`distances` caches their pairs' edit distances)."""
    ids = [t.trial_id for t in trained]
    descriptors = [descriptor(t) for t in trained]
    n = len(ids)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            pair = (ids[i], ids[j])
            if pair not in distances:
                distances[pair] = distance(descriptors[i], descriptors[j])
            d[i, j] = d[j, i] = distances[pair]
    sign = 1.0 if maximize else -1.0
    scores = np.array([sign * t.score for t in trained], dtype=np.float64)
    return GaussianProcess(descriptors, d, scores, beta)


class GaussianProcess:
    """GP regression on scores with the kernel exp(-distance / scale).

    The scale is the median distance between trained networks; the scores
    are standardised; the edit distance does not make the kernel positive
    definite in general, so jitter is added to the diagonal until the
    Cholesky factorisation succeeds.
    """

    def __init__(
        self, descriptors: list[Descriptor], distances: np.ndarray, y: np.ndarray, beta: float
    ):
        self.descriptors, self.beta = descriptors, beta
        positive = distances[distances > 0]
        self.scale = float(np.median(positive)) if positive.size else 1.0
        self.mean = float(y.mean())
        self.std = float(y.std()) or 1.0
        k = np.exp(-distances / self.scale)
        jitter = 1e-2
        while True:
            try:
                self.chol = np.linalg.cholesky(k + jitter * np.eye(len(y)))
                break
            except np.linalg.LinAlgError:
                jitter *= 10
        self.alpha = np.linalg.solve(
            self.chol.T, np.linalg.solve(self.chol, (y - self.mean) / self.std)
        )

    def predict(self, descriptor: Descriptor) -> tuple[float, float]:
        """Mean and standard deviation of the score of a network."""
        k = np.exp(-np.array([distance(descriptor, d) for d in self.descriptors]) / self.scale)
        v = np.linalg.solve(self.chol, k)
        mean = float(k @ self.alpha)
        var = max(1.0 - float(v @ v), 0.0)
        return mean * self.std + self.mean, math.sqrt(var) * self.std

    def ucb(self, descriptor: Descriptor) -> float:
        mean, std = self.predict(descriptor)
        return (mean - self.mean) / self.std + self.beta * std / self.std
