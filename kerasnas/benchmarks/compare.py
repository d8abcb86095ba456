"""The strategy-comparison harness: every strategy on the same seeds of a table."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kerasnas.benchmarks.tabular import TabularBenchmark
from kerasnas.report import show as show_line


@dataclasses.dataclass
class StrategyResult:
    """What one strategy achieved over the seeds.

    Attributes:
        strategy: The strategy's name.
        final: Per seed, the reported metric of the best-by-objective trial.
        curves: Per seed and trial, the reported metric of the best trial so
            far (by objective); shape (seeds, budget).
        rewards: Per seed and trial, the objective value of each trial;
            shape (seeds, budget). Shows whether a strategy's samples improve.
        seconds: Wall-clock seconds of all its runs.
    """

    strategy: str
    final: np.ndarray
    curves: np.ndarray
    rewards: np.ndarray
    seconds: float

    @property
    def mean(self) -> float:
        return float(self.final.mean())

    @property
    def std(self) -> float:
        """Standard deviation over seeds (of the population: ddof=0)."""
        return float(self.final.std())

    @property
    def se(self) -> float:
        """Standard error of the mean over seeds: sample std (ddof=1) / sqrt(seeds)."""
        n = len(self.final)
        return float(self.final.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    @property
    def budget(self) -> int:
        return int(self.curves.shape[1])

    def at(self, budget: int) -> StrategyResult:
        """The same runs cut to their first `budget` trials.

        A strategy's first `budget` proposals do not depend on `max_trials`
        (true of every kerasnas strategy and of the TPE peer), so this equals
        runs with `max_trials=budget` (tests/harness_test.py checks it).
        """
        if not 1 <= budget <= self.budget:
            raise ValueError(f"budget must lie in [1, {self.budget}]. Received: {budget}.")
        return StrategyResult(
            self.strategy,
            self.curves[:, budget - 1].copy(),
            self.curves[:, :budget],
            self.rewards[:, :budget],
            self.seconds,
        )

    def line(self, budget: int | None = None, table: str | None = None) -> str:
        """`<strategy> mean=<x> std=<y> se=<z> [table=<t>] seeds=<n> budget=<b>`."""
        where = f" table={table}" if table else ""
        return (
            f"{self.strategy} mean={self.mean:.4f} std={self.std:.4f} se={self.se:.4f}{where} "
            f"seeds={len(self.final)} budget={budget or self.budget}"
        )


def compare(
    bench: TabularBenchmark,
    strategies: Sequence[str] = ("random", "evolution"),
    *,
    budget: int = 100,
    seeds: int | Sequence[int] = 30,
    objective: str = "val_accuracy",
    report: str = "test_accuracy",
    strategy_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    plot: str | os.PathLike | None = None,
    directory: str | os.PathLike | None = None,
    verbose: bool = True,
) -> dict[str, StrategyResult]:
    """Runs each strategy on the same seeds of a tabular benchmark.

    For every strategy and seed it runs a `kerasnas.Search` of `budget`
    trials that optimises `objective`, and records `report` of the best trial
    by objective (searching on one signal and reporting another, as a table
    without a validation split requires). Prints one line per strategy,
    `<strategy> mean=<x> std=<y> se=<z> seeds=<n> budget=<b>`, and optionally plots
    the mean best-so-far `report` against trials.

    Args:
        bench: The `TabularBenchmark` answering the trials.
        strategies: Strategy names (see `kerasnas.oracles.STRATEGIES`).
        budget: Trials (table queries) per run.
        seeds: A number of seeds (0..n-1) or the seeds themselves.
        objective: The metric the searches optimise (maximised).
        report: The metric reported for the chosen architecture.
        strategy_kwargs: Extra oracle arguments per strategy name.
        plot: Optional path of a PNG of best-so-far curves.
        directory: Where the runs' trial stores go (a temporary folder when None,
            in `/dev/shm` where there is one: the store's writes are synced to disk).
        verbose: Whether to print the result lines.

    Returns:
        `{strategy: StrategyResult}`.
    """
    for metric in (objective, report):
        if metric not in bench.metric_names:
            raise ValueError(
                f"{metric!r} is not a metric of the benchmark; it has {list(bench.metric_names)}."
            )
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list or budget < 1:
        raise ValueError(f"Need at least one seed and budget >= 1. Received {seeds}, {budget}.")
    results = {}
    with tempfile.TemporaryDirectory(dir=store_root()) as tmp:
        root = os.fspath(directory) if directory is not None else tmp
        for strategy in strategies:
            start = time.perf_counter()
            finals, curves, rewards = [], [], []
            for seed in seed_list:
                score, curve, reward = search_table(
                    bench,
                    strategy,
                    seed=seed,
                    budget=budget,
                    objective=objective,
                    report=report,
                    directory=root,
                    project_name=f"{strategy}_seed{seed}",
                    **dict((strategy_kwargs or {}).get(strategy, {})),
                )
                finals.append(score)
                curves.append(curve)
                rewards.append(reward)
            result = StrategyResult(
                strategy,
                np.array(finals),
                np.array(curves),
                np.array(rewards),
                time.perf_counter() - start,
            )
            results[strategy] = result
            if verbose:
                show_line(result.line(budget))
    if plot is not None:
        plot_curves(results, plot, report=report, title=f"{bench.source}")
    return results


def search_table(
    bench: TabularBenchmark,
    strategy: str,
    *,
    seed: int,
    budget: int,
    objective: str,
    report: str,
    directory: str,
    project_name: str,
    **strategy_kwargs: Any,
) -> tuple[float, list[float], list[float]]:
    """One search of `strategy` on the table: `trajectory()` of its trials.

    The project `directory/project_name` is overwritten; the search prints nothing.
    """
    from kerasnas.search import Search

    search = Search(
        bench.space,
        strategy,
        objective=objective,
        max_trials=budget,
        seed=seed,
        evaluator=bench,
        directory=directory,
        project_name=project_name,
        overwrite=True,
        verbose=0,
        **strategy_kwargs,
    )
    search.fit()
    return trajectory(search.results(), objective, report, budget)


def store_root() -> str | None:
    """A folder for throw-away trial stores: `/dev/shm` when writable (no disk syncs)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def trajectory(records, objective: str, report: str, budget: int):
    """Best-so-far reported metric per trial, padded to the budget.

    Args:
        records: Trial records in trial order, each `{"status", "metrics"}`.
        objective: The maximised metric that picks the best trial so far.
        report: The metric reported of that trial.
        budget: Trials the run was given.

    Returns:
        `(final, curve, rewards)`: `report` of the best trial by `objective`
        (the first of equals), that value after each trial, and each trial's
        `objective` (NaN past a run that stopped early).
    """
    """Best-so-far reported metric per trial, padded to the budget."""
    best_obj, best_report = -np.inf, np.nan
    curve, rewards = [], []
    for r in records:
        if r["status"] != "COMPLETED":
            continue
        value = r["metrics"][objective]
        rewards.append(value)
        if value > best_obj:
            best_obj, best_report = value, r["metrics"][report]
        curve.append(best_report)
    if not curve:
        raise RuntimeError("No trial completed in a comparison run.")
    # A run that stopped early (exhausted space, time budget) keeps its last value.
    curve += [curve[-1]] * (budget - len(curve))
    rewards += [np.nan] * (budget - len(rewards))
    return best_report, curve[:budget], rewards[:budget]


def plot_curves(
    results: Mapping[str, StrategyResult],
    path: str | os.PathLike,
    *,
    report: str,
    title: str = "",
    marks: Sequence[int] = (),
) -> str:
    """Plots mean (± std) best-so-far reported metric against trials to a PNG.

    `marks` draws dotted vertical lines at those trial counts (e.g. budgets).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, result in results.items():
        mean = result.curves.mean(axis=0)
        std = result.curves.std(axis=0)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=f"{name} ({result.mean:.4f})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    for mark in marks:
        ax.axvline(mark, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("trials (table queries)")
    ax.set_ylabel(f"{report} of best so far")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return os.fspath(path)
