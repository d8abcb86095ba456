"""Landscape analysis of a table: random-walk autocorrelation and locality."""

from __future__ import annotations

import numpy as np

from kerasnas.benchmarks.tabular import TabularBenchmark


def random_walk(bench: TabularBenchmark, metric: str, steps: int, seed: int = 0) -> np.ndarray:
    """A metric's (mean) values along a random walk of one-decision mutations."""
    rng = np.random.default_rng(seed)
    space = bench.space
    arch = space.sample(rng)
    while arch not in bench:
        arch = space.sample(rng)
    values = [bench.mean(arch, metric)]
    while len(values) < steps:
        step = space.mutate(arch, rng)
        if step in bench:
            arch = step
            values.append(bench.mean(arch, metric))
    return np.array(values)


def random_walk_autocorrelation(
    bench: TabularBenchmark,
    metric: str = "val_accuracy",
    *,
    steps: int = 10_000,
    max_lag: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Random-walk autocorrelation (RWA) of a table, as in the NAS-Bench-101 paper.

    Walks `steps` random one-decision mutations and returns the correlation
    of the metric between points `lag` steps apart, for lag = 1..max_lag. A
    high correlation at small lags means neighbours perform alike: a smooth
    landscape, where local search (evolution) can beat random search.

    Returns:
        An array of `max_lag` correlations; element i is lag i + 1.
    """
    if steps <= max_lag + 1:
        raise ValueError(f"steps must exceed max_lag + 1. Received {steps}, {max_lag}.")
    walk = random_walk(bench, metric, steps, seed)
    return np.array([np.corrcoef(walk[:-lag], walk[lag:])[0, 1] for lag in range(1, max_lag + 1)])


def locality(
    bench: TabularBenchmark, metric: str = "val_accuracy", *, samples: int = 2_000, seed: int = 0
) -> dict[str, float]:
    """How much closer neighbours perform than random pairs.

    Returns:
        `neighbour_diff`: mean absolute metric difference between an
        architecture and a one-decision mutation of it; `random_diff`: the
        same for two independent random architectures; and their ratio
        (below 1 means a local landscape).
    """
    rng = np.random.default_rng(seed)
    space = bench.space
    near, far = [], []
    while len(near) < samples:
        a, b = space.sample(rng), space.sample(rng)
        m = space.mutate(a, rng)
        if a in bench and b in bench and m in bench:
            va = bench.mean(a, metric)
            near.append(abs(va - bench.mean(m, metric)))
            far.append(abs(va - bench.mean(b, metric)))
    neighbour, random = float(np.mean(near)), float(np.mean(far))
    return {"neighbour_diff": neighbour, "random_diff": random, "ratio": neighbour / random}
