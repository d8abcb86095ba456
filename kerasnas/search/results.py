"""A search's results: one typed record per trial, the best trials, the Pareto front, the table."""

from __future__ import annotations

import os
from typing import Any, TypedDict

import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerasnas import report
from kerasnas.architecture import Architecture
from kerasnas.objectives import ResourceConstrained, pareto_front
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import SearchSpace
from kerasnas.training.runner import INHERITED, PARAMS, TRAIN_TIME

COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
#: The status of a trial whose folder was found missing (its result is lost).
MISSING = "MISSING"


class TrialRecord(TypedDict):
    """What `Search.results()` tells of one trial (a plain dict, typed).

    Keys: `trial_id`; `status` (keras-tuner's status name, or `"MISSING"` for a
    trial whose folder was found missing: its result is lost); `architecture`
    (JSON); `hash` (of the trial's network, as its strategy names it);
    `score` (the objective, None when the trial did not complete); `metrics`
    (best-epoch value by metric name); `params`; `train_time` (seconds);
    `message` (the error of a failed trial, else None); `details` (what its
    strategy tells of the trial, by kind, e.g. `{"halving": {"rung", "epochs",
    "parent", "scores"}}` with successive halving, `{"morph": {"parent", "ops",
    "inherited"}}` for a network grown by morphism, `{"prescreen": {"rank",
    "score"}}` for a pre-screened architecture; `{}` when it tells nothing).
    """

    trial_id: str
    status: str
    architecture: str
    hash: str
    score: float | None
    metrics: dict[str, float]
    params: int | None
    train_time: float | None
    message: str | None
    details: dict[str, Any]


def trial_record(
    trial: trial_module.Trial, space: SearchSpace, oracle: keras_tuner.Oracle
) -> TrialRecord:
    """The record of one trial."""
    values = trial.hyperparameters.values
    arch = space.decode(values)
    metrics = {name: float(trial.metrics.get_last_value(name)) for name in trial.metrics.metrics}
    nas = isinstance(oracle, NasOracle)
    record: TrialRecord = {
        "trial_id": trial.trial_id,
        "status": trial.status,
        "architecture": arch.to_json(),
        "hash": oracle.network_hash(trial) if nas else arch.hash(),
        "score": None if trial.score is None else float(trial.score),
        "metrics": {k: v for k, v in metrics.items() if k not in (PARAMS, TRAIN_TIME, INHERITED)},
        "params": None if metrics.get(PARAMS) is None else int(metrics[PARAMS]),
        "train_time": metrics.get(TRAIN_TIME),
        "message": trial.message,
        "details": oracle.trial_details(trial) if nas else {},
    }
    return record


def lost_record(trial_id: str, folder: str) -> TrialRecord:
    """The record of a trial whose folder is missing (status `MISSING`)."""
    return {
        "trial_id": trial_id,
        "status": MISSING,
        "architecture": "",
        "hash": "",
        "score": None,
        "metrics": {},
        "params": None,
        "train_time": None,
        "message": f"The trial's folder {folder} is missing: its result is lost. Restore the "
        "folder from a backup to keep it.",
        "details": {},
    }


def completed(records: list[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r["status"] == COMPLETED]


def pareto(records: list[TrialRecord], objective: keras_tuner.Objective) -> list[TrialRecord]:
    """The completed trials that no other trial beats on both objectives, fewest resources first.

    With a `ResourceConstrained` objective the two objectives are its metric
    (maximised) and its resource (minimised); otherwise the objective and
    the parameter count.
    """
    if isinstance(objective, ResourceConstrained):
        axes = [(objective.metric, "max"), (objective.resource, "min")]
    else:
        axes = [(objective.name, objective.direction), (PARAMS, "min")]
    flat = [{**r["metrics"], PARAMS: r["params"], "record": r} for r in completed(records)]
    front = pareto_front(flat, axes)
    front.sort(key=lambda f: f[axes[1][0]])
    return [f["record"] for f in front]


def pareto_axes(objective: keras_tuner.Objective) -> tuple[str, str]:
    """The (resource, metric) names that a Pareto plot draws."""
    if isinstance(objective, ResourceConstrained):
        return objective.resource, objective.metric
    return PARAMS, objective.name


def show_summary(
    records: list[TrialRecord], objective: keras_tuner.Objective, where: str, k: int = 10
) -> None:
    """Prints a table of the k best completed trials."""
    done = completed(records)
    failed = sum(r["status"] == FAILED for r in records)
    done.sort(key=lambda r: r["score"], reverse=objective.direction == "max")
    name = objective.name
    report.show()
    report.show(
        f"[kerasnas] {len(done)} completed, {failed} failed trials in {where}; "
        f"best {min(k, len(done))} by {name}:"
    )
    report.show(
        f"{'rank':>4}  {'trial':>5}  {'arch':8}  {name:>12}  {'params':>10}  {'time(s)':>8}"
    )
    for rank, r in enumerate(done[:k], 1):
        report.show(
            f"{rank:>4}  {r['trial_id']:>5}  {r['hash'][:8]}  {r['score']:>12.4f}  "
            f"{r['params'] or 0:>10,}  {r['train_time'] or 0:>8.1f}"
        )


class SearchResults:
    """The read side of `kerasnas.Search`: its trials as records, the best ones, the
    Pareto front, plots and the summary table (mixed into `Search`)."""

    oracle: keras_tuner.Oracle
    space: SearchSpace
    project_dir: str

    @property
    def objective(self) -> keras_tuner.Objective:
        return self.oracle.objective

    def _ensure_loaded(self) -> None:
        """Reads a stored project when this search has not run one."""

    def completed_trials(self) -> list[trial_module.Trial]:
        return [t for t in self.oracle.trials.values() if t.status == COMPLETED]

    def results(self) -> list[TrialRecord]:
        """One `TrialRecord` (a typed dict) per trial, in trial order.

        Each record has `trial_id`, `status` (keras-tuner's status name),
        `architecture` (JSON), `hash`, `score` (the objective), `metrics`
        (best-epoch value by metric name), `params`, `train_time` (seconds),
        `message` (the error of a failed trial, else None) and `details`
        (what the strategy tells of the trial, see `TrialRecord`). For a
        network grown by morphism `architecture` is the root architecture and
        `details["morph"]` the lineage: `{"parent": trial id, "ops": [op
        strings from the root], "inherited": whether training started from the
        parent's weights}` (`hash` covers the ops).
        """
        self._ensure_loaded()
        trials = self.oracle.trials
        records = [trial_record(trials[i], self.space, self.oracle) for i in sorted(trials)]
        lost = getattr(self.oracle, "lost_trials", [])
        if lost:
            records += [lost_record(t, self.oracle.trial_path(t)) for t in lost]
            records.sort(key=lambda r: (int(r["trial_id"]), r["trial_id"]))
        return records

    def best_trials(self, k: int = 1) -> list[trial_module.Trial]:
        """The k best completed trials, best first."""
        self._ensure_loaded()
        best = [t for t in self.oracle.get_best_trials(k) if t.status == COMPLETED]
        if not best:
            raise ValueError(f"No trial has completed in {self.project_dir}; call fit() first.")
        return best

    def best_architectures(self, k: int = 1) -> list[Architecture]:
        """The architectures of the k best completed trials, best first.

        Raises:
            ValueError: when one of them is a network grown by morphisms,
                which no architecture of the space describes (use
                `best_model()`, or `results()` for its root and ops).
        """
        best = self.best_trials(k)
        if isinstance(self.oracle, NasOracle):
            return [self.oracle.architecture(t) for t in best]
        return [self.space.decode(t.hyperparameters.values) for t in best]

    def pareto_front(self) -> list[TrialRecord]:
        """The completed trials that no other trial beats on both objectives.

        With a `kerasnas.objectives.ResourceConstrained` objective the two
        objectives are its metric (maximised) and its resource (minimised);
        otherwise they are the objective and the parameter count. Returns
        `results()` records, fewest resources first.
        """
        return pareto(self.results(), self.objective)

    def plot_history(self, path: str | os.PathLike = "history.png") -> str:
        """Plots each trial's score and the best so far to an image file."""
        from kerasnas import _plot

        records = self.results()
        if not completed(records):
            raise ValueError(f"No trial has completed in {self.project_dir}; nothing to plot.")
        return _plot.plot_history(
            records, self.objective.name, self.objective.direction, os.fspath(path)
        )

    def plot_pareto(self, path: str | os.PathLike = "pareto.png") -> str:
        """Plots every completed trial and the Pareto front (see `pareto_front`)."""
        from kerasnas import _plot

        resource, metric = pareto_axes(self.objective)

        def point(r: TrialRecord) -> tuple[float, float]:
            values = {**r["metrics"], PARAMS: r["params"]}
            return (values[resource], values[metric])

        done = completed(self.results())
        if not done:
            raise ValueError(f"No trial has completed in {self.project_dir}; nothing to plot.")
        front = [point(r) for r in self.pareto_front()]
        return _plot.plot_pareto([point(r) for r in done], front, resource, metric, os.fspath(path))

    def summary(self, k: int = 10) -> None:
        """Prints a table of the k best completed trials."""
        show_summary(self.results(), self.objective, self.project_dir, k)
