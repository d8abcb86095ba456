"""Optuna's TPE sampler on a tabular benchmark: an outside peer for the harness.

Optuna is imported only here, when the peer runs; `pip install -e ".[bench]"`
(or `pip install optuna`) installs it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from kerasnas.benchmarks.tabular import TabularBenchmark

#: The peer's name in the harness's results and lines.
TPE = "tpe"
INSTALL_HINT = 'pip install -e ".[bench]" (or pip install "optuna>=3")'


def require_optuna() -> Any:
    """The `optuna` module, or ImportError saying how to install it."""
    try:
        import optuna
    except ImportError as err:
        raise ImportError(
            f"The TPE peer needs Optuna, which is not installed: {INSTALL_HINT}."
        ) from err
    return optuna


def optuna_available() -> bool:
    try:
        require_optuna()
    except ImportError:
        return False
    return True


def tpe_search(
    bench: TabularBenchmark,
    budget: int,
    seed: int,
    *,
    objective: str = "val_accuracy",
) -> list[dict[str, Any]]:
    """Runs an Optuna study with `TPESampler(seed=seed)` for `budget` table queries.

    Each trial suggests every active decision of the benchmark's space as a
    categorical parameter, looks the architecture up in `bench` with the draw
    rule of a kerasnas search (`kerasnas.training.evaluators.query_rng(seed, trial
    number)`), and returns `objective`, which the
    study maximises. Optuna may propose an architecture again; each trial is a
    query all the same (kerasnas strategies never repeat one).

    Returns:
        The trials in order, as records `{"status": "COMPLETED", "metrics": {...},
        "values": {...}}`, the form `kerasnas.benchmarks.compare.trajectory` reads.
    """
    from kerasnas.training.evaluators import query_rng

    optuna = require_optuna()
    decisions = bench.space.decisions
    records: list[dict[str, Any]] = []

    def evaluate(trial: Any) -> float:
        values: dict[str, Any] = {}
        for d in decisions:
            if d.is_active(values):
                values[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        metrics = bench.evaluate(values, query_rng(seed, trial.number))
        records.append({"status": "COMPLETED", "metrics": metrics, "values": values})
        return metrics[objective]

    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Optuna's ExperimentalWarning
            study = optuna.create_study(
                direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
            )
            study.optimize(evaluate, n_trials=budget)
    finally:
        optuna_logger.setLevel(level)
    return records
