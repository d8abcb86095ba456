"""The strategy-comparison harness over the shared tables, budgets and seeds.

`run` searches every (table, strategy, seed) once at the largest budget and
reads the smaller budgets from the same runs' best-so-far curves: the first
`b` trials of a search are the search with `max_trials=b`, since no strategy
here looks at `max_trials` before it stops (`prefix=False` runs each budget
separately instead). Optuna's TPE sampler runs beside the kerasnas strategies
as a peer (`kerasnas.benchmarks.tpe`). `python -m kerasnas.benchmarks` is its
command line; `benchmarks/strategies.py` runs it at the issue's settings.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kerasnas.benchmarks import compare, tpe
from kerasnas.benchmarks.tabular import TabularBenchmark, load_shared

_TABLES: dict[TableSpec, TabularBenchmark] = {}
# The hooks a strategy overrides when it trains networks itself (one-shot, morphism).
_TRAINING_HOOKS = ("prepare", "model_for_trial")


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A shared table to load (in any process): its name, path and search signal.

    Attributes:
        name: A name of `kerasnas.benchmarks.SHARED_TABLES` (`"macro"`, ...).
        path: The JSON file.
        search_metric: Record path of `val_accuracy`; the loader's default
            (a random seed's accuracy on each query) when None.
    """

    name: str
    path: str
    search_metric: str | None = None

    def load(self) -> TabularBenchmark:
        """The benchmark, read once per process."""
        if self not in _TABLES:
            _TABLES[self] = load_shared(self.name, self.path, search_metric=self.search_metric)
        return _TABLES[self]


def table_strategies(registry: Mapping[str, type] | None = None) -> list[str]:
    """The registered strategies that run on a table, in registry order.

    A strategy says so with `runs_on_tables`; when it does not (None), those
    that train networks themselves are excluded: those whose hooks are
    essential (`needs_runner`, e.g. morphism and the one-shot methods), that
    need validation data, or that override `prepare` or `model_for_trial`.
    """
    from kerasnas.oracles import STRATEGIES
    from kerasnas.oracles.base import NasOracle

    names = []
    for name, cls in (STRATEGIES if registry is None else registry).items():
        declared = getattr(cls, "runs_on_tables", None)
        trains = getattr(cls, "needs_runner", False) or getattr(cls, "needs_validation_data", False)
        trains = trains or any(
            getattr(cls, hook, None) is not getattr(NasOracle, hook) for hook in _TRAINING_HOOKS
        )
        runs = declared if declared is not None else not trains
        if runs:
            names.append(name)
    return names


@dataclasses.dataclass(frozen=True)
class _Job:
    table: TableSpec
    strategy: str
    seed: int
    budget: int
    objective: str
    report: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    strategy_class: type | None = None  # To register a strategy added at run time.


def _run_job(job: _Job) -> tuple[float, list[float], list[float], float]:
    """One search: `(final, curve, rewards, seconds)` (runs in a worker process)."""
    start = time.perf_counter()
    bench = job.table.load()
    if job.strategy in tpe.PEERS:
        records = tpe.peer_search(
            bench, job.budget, job.seed, peer=job.strategy, objective=job.objective
        )
        final, curve, rewards = compare.trajectory(records, job.objective, job.report, job.budget)
    else:
        from kerasnas.oracles import STRATEGIES, register

        if job.strategy not in STRATEGIES and job.strategy_class is not None:
            register(job.strategy, job.strategy_class)
        with tempfile.TemporaryDirectory(dir=compare.store_root()) as tmp:
            final, curve, rewards = compare.search_table(
                bench,
                job.strategy,
                seed=job.seed,
                budget=job.budget,
                objective=job.objective,
                report=job.report,
                directory=tmp,
                project_name=f"{job.table.name}_{job.strategy}_seed{job.seed}",
                **dict(job.kwargs),
            )
    return final, curve, rewards, time.perf_counter() - start


@dataclasses.dataclass
class Comparison:
    """The harness's results.

    Attributes:
        tables: The tables compared, by name.
        budgets: The budgets, ascending.
        strategies: The strategies, the TPE peer first when it ran.
        results: `results[table][budget][strategy]`: a `StrategyResult`.
        objective: The maximised metric.
        report: The reported metric.
    """

    tables: dict[str, TableSpec]
    budgets: tuple[int, ...]
    strategies: tuple[str, ...]
    results: dict[str, dict[int, dict[str, compare.StrategyResult]]]
    objective: str
    report: str

    def lines(self) -> list[str]:
        """Per table a header, then per budget and strategy `StrategyResult.line`; then,
        with several tables, `regret_lines()`."""
        out = []
        for name, spec in self.tables.items():
            bench = spec.load()
            key, best = bench.best(self.report)
            out.append(
                f"table {name} ({spec.path}): {len(bench)} architectures; best "
                f"{self.report}={best:.4f} ({key}); search on {self.objective}"
            )
            for budget in self.budgets:
                for result in self.results[name][budget].values():
                    out.append(result.line(budget, table=name))
        return out + (self.regret_lines() if len(self.tables) > 1 else [])

    def regrets(self, table: str, budget: int) -> dict[str, np.ndarray]:
        """Each strategy's normalised regret per seed on a table at a budget: the gap of its
        pick's reported metric to the table's best, in units of the spread of the table's
        top 1 % (its best less its 99th percentile), so that tables of any scale and
        spread compare: 0 is the table's best, 1 the edge of its top 1 %."""
        bench = self.tables[table].load()
        values = np.array([np.mean(r[self.report]) for r in bench.table.values()])
        best, edge = float(values.max()), float(np.quantile(values, 0.99))
        spread = best - edge if best > edge else 1.0
        return {
            name: (best - result.final) / spread
            for name, result in self.results[table][budget].items()
        }

    def ranks(self, budget: int) -> dict[str, dict[str, float]]:
        """`{table: {strategy: rank}}` at a budget by mean normalised regret (1 the best;
        ties share the mean of their ranks)."""
        out = {}
        for table in self.tables:
            means = {n: float(r.mean()) for n, r in self.regrets(table, budget).items()}
            ordered = sorted(means.values())
            out[table] = {
                n: float(np.mean([i + 1 for i, v in enumerate(ordered) if v == m]))
                for n, m in means.items()
            }
        return out

    def regret_lines(self) -> list[str]:
        """Per budget and strategy its normalised regret and rank on every table and its
        mean rank over them (`regret budget=B strategy=S mean_rank=R <table>=<regret>±<se>
        (rank) ...`), best mean rank first; then per table left out, the strategy that
        the other tables' mean rank would choose, and its rank on the table left out."""
        out = []
        for budget in self.budgets:
            ranks = self.ranks(budget)
            regrets = {t: self.regrets(t, budget) for t in self.tables}
            mean_rank = {n: float(np.mean([ranks[t][n] for t in ranks])) for n in self.strategies}
            for name in sorted(self.strategies, key=lambda n: (mean_rank[n], n)):
                cells = " ".join(
                    f"{t}={regrets[t][name].mean():.2f}±{_se(regrets[t][name]):.2f}"
                    f"({ranks[t][name]:g})"
                    for t in self.tables
                )
                out.append(
                    f"regret budget={budget} strategy={name} "
                    f"mean_rank={mean_rank[name]:.2f} {cells}"
                )
            for left_out in self.tables:
                others = [t for t in self.tables if t != left_out]
                chosen = min(
                    self.strategies,
                    key=lambda n: (float(np.mean([ranks[t][n] for t in others])), n),
                )
                out.append(
                    f"leave-one-out budget={budget} table={left_out} chosen={chosen} "
                    f"rank={ranks[left_out][chosen]:g}/{len(self.strategies)} "
                    f"regret={regrets[left_out][chosen].mean():.2f}"
                )
        return out

    def plot(self, prefix: str) -> list[str]:
        """Mean best-so-far curves per table to `<prefix>_<table>.png`; the paths."""
        prefix = prefix.removesuffix(".png")
        paths = []
        for name, spec in self.tables.items():
            path = f"{prefix}_{name}.png"
            largest = self.results[name][self.budgets[-1]]
            compare.plot_curves(
                largest,
                path,
                report=self.report,
                title=f"{name}: {os.path.basename(spec.path)}",
                marks=self.budgets[:-1],
            )
            paths.append(path)
        return paths


def run(
    tables: Sequence[TableSpec],
    strategies: Sequence[str] | None = None,
    *,
    budgets: Sequence[int] = (50, 100, 300),
    seeds: int | Sequence[int] = 30,
    tpe_peer: bool = True,
    objective: str = "val_accuracy",
    report: str = "test_accuracy",
    strategy_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int = 2,
    prefix: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Runs every strategy (and the Optuna peers) on every table, budget and seed.

    Args:
        tables: The tables (`TableSpec`s; their names must differ).
        strategies: Strategy names of `kerasnas.oracles.STRATEGIES`, and the
            Optuna peers `"tpe"` and `"gp"` (`kerasnas.benchmarks.tpe.PEERS`); all
            strategies that run on tables (`table_strategies()`) when None.
        budgets: Trials (table queries) per search.
        seeds: A number of seeds (0..n-1) or the seeds themselves.
        tpe_peer: Whether to run Optuna's TPE sampler too (needs `optuna`).
        objective: The metric the searches maximise.
        report: The metric reported of each search's best-by-objective trial.
        strategy_kwargs: Extra oracle arguments per strategy name.
        workers: Processes running searches (1: this process).
        prefix: Read smaller budgets from the largest budget's runs (True),
            or run each budget separately (False).
        progress: Called with a line when a (table, strategy) finishes.

    Returns:
        A `Comparison`.
    """
    from kerasnas.oracles import STRATEGIES

    budgets = tuple(sorted({int(b) for b in budgets}))
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not tables or not budgets or budgets[0] < 1 or not seed_list:
        raise ValueError("Need at least one table, one budget >= 1 and one seed.")
    if len({t.name for t in tables}) != len(tables):
        raise ValueError(f"Table names must differ. Received: {[t.name for t in tables]}.")
    names = list(table_strategies() if strategies is None else strategies)
    names = [tpe.TPE] * bool(tpe_peer) + [s for s in names if s != tpe.TPE]
    for peer in tpe.PEERS:
        if peer in names:
            tpe.require_optuna(peer)
    for table in tables:
        bench = table.load()
        for metric in (objective, report):
            if metric not in bench.metric_names:
                raise ValueError(f"{metric!r} is not a metric of {table.name}.")
    run_budgets = (budgets[-1],) if prefix else budgets
    jobs = [
        _Job(
            table,
            name,
            seed,
            budget,
            objective,
            report,
            tuple(sorted((strategy_kwargs or {}).get(name, {}).items())),
            STRATEGIES.get(name),
        )
        for table in tables
        for name in names
        for budget in run_budgets
        for seed in seed_list
    ]
    done = _execute(jobs, workers, progress)
    results: dict[str, dict[int, dict[str, compare.StrategyResult]]] = {}
    for table in tables:
        results[table.name] = {
            budget: {
                name: _collect(
                    [
                        (j, r)
                        for j, r in zip(jobs, done, strict=True)
                        if (j.table, j.strategy) == (table, name)
                    ],
                    budget,
                    prefix,
                )
                for name in names
            }
            for budget in budgets
        }
    return Comparison(
        {t.name: t for t in tables}, budgets, tuple(names), results, objective, report
    )


def _se(values: np.ndarray) -> float:
    """Standard error of a mean over seeds (0 for one seed)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def _collect(runs: list[tuple[_Job, tuple]], budget: int, prefix: bool) -> compare.StrategyResult:
    """One strategy's `StrategyResult` at a budget: its runs cut to it, or of that budget."""
    runs = [(j, r) for j, r in runs if prefix or j.budget == budget]
    result = compare.StrategyResult(
        runs[0][0].strategy,
        np.array([r[0] for _, r in runs]),
        np.array([r[1] for _, r in runs]),
        np.array([r[2] for _, r in runs]),
        float(sum(r[3] for _, r in runs)),
    )
    return result.at(budget) if prefix else result


def _execute(jobs: list[_Job], workers: int, progress: Callable[[str], None] | None) -> list[tuple]:
    """Runs the jobs, in `workers` spawned processes when more than 1."""
    left: dict[tuple[str, str], int] = {}
    for job in jobs:
        left[job.table.name, job.strategy] = left.get((job.table.name, job.strategy), 0) + 1
    seconds: dict[tuple[str, str], float] = {}
    done: list[Any] = [None] * len(jobs)

    def finished(index: int, result: tuple) -> None:
        done[index] = result
        job = jobs[index]
        group = (job.table.name, job.strategy)
        left[group] -= 1
        seconds[group] = seconds.get(group, 0.0) + result[3]
        if progress is not None and not left[group]:
            runs = sum(1 for j in jobs if (j.table.name, j.strategy) == group)
            progress(f"{group[0]} {group[1]}: {runs} searches, {seconds[group]:.1f}s")

    if workers <= 1:
        for index, job in enumerate(jobs):
            finished(index, _run_job(job))
        return done
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe.
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_run_job, job): i for i, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            finished(futures[future], future.result())
    return done
