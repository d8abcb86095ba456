"""Optuna's samplers on a tabular benchmark: the outside peers of the harness.

Two peers: `"tpe"` (`TPESampler`, Optuna's default) and `"gp"` (`GPSampler`,
Gaussian-process Bayesian optimisation, which needs PyTorch). Optuna is
imported only here, when a peer runs; `pip install -e ".[bench]"` (or `pip
install optuna`) installs it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from kerasnas.benchmarks.tabular import TabularBenchmark

#: The peers' names in the harness's results and lines.
TPE = "tpe"
GP = "gp"
PEERS = (TPE, GP)
INSTALL_HINT = 'pip install -e ".[bench]" (or pip install "optuna>=3")'
TORCH_HINT = (
    "pip install torch (a CPU build: torch==VERSION+cpu from https://download.pytorch.org/whl/cpu)"
)


def require_optuna(peer: str = TPE) -> Any:
    """The `optuna` module, or ImportError saying how to install what `peer` needs."""
    try:
        import optuna
    except ImportError as err:
        raise ImportError(
            f"The {peer} peer needs Optuna, which is not installed: {INSTALL_HINT}."
        ) from err
    if peer == GP:
        try:
            import torch  # noqa: F401 - GPSampler's Gaussian process is written in PyTorch.
        except ImportError as err:
            raise ImportError(
                f"The gp peer (Optuna's GPSampler) needs PyTorch, which is not installed: "
                f"{TORCH_HINT}."
            ) from err
    return optuna


def _sampler(optuna: Any, peer: str, seed: int) -> Any:
    if peer == GP:
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def optuna_available() -> bool:
    try:
        require_optuna()
    except ImportError:
        return False
    return True


def peer_search(
    bench: TabularBenchmark,
    budget: int,
    seed: int,
    *,
    peer: str = TPE,
    objective: str = "val_accuracy",
) -> list[dict[str, Any]]:
    """Runs an Optuna study with the peer's sampler (seeded) for `budget` table queries.

    `peer` is `"tpe"` (`TPESampler(seed=seed)`) or `"gp"` (`GPSampler(seed=seed)`).

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

    if peer not in PEERS:
        raise ValueError(f"peer must be one of {list(PEERS)}. Received: {peer!r}.")
    optuna = require_optuna(peer)
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
            study = optuna.create_study(direction="maximize", sampler=_sampler(optuna, peer, seed))
            study.optimize(evaluate, n_trials=budget)
    finally:
        optuna_logger.setLevel(level)
    return records
