"""How a trial is evaluated: trained (`TrainedEvaluator`) or looked up (`TableEvaluator`).

The trial runner (`kerasnas.training.runner.NasTuner`) calls one `Evaluator`
and knows neither: `evaluate(runner, trial, plan, fit_kwargs)` gives the trial's
metrics; `session(runner)` wraps a whole search (a table search batches its store
writes); `max_time` is the longest a trial can take when the evaluator knows it
(a table does), for the time budget; `trains` says whether trials leave trained
models behind.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas import _memory
from kerasnas._io import write_json
from kerasnas.objectives import objective_inputs
from kerasnas.plan import TrialPlan
from kerasnas.training import measure
from kerasnas.training.budget import TRAIN_TIME
from kerasnas.training.workers import Heartbeat

if TYPE_CHECKING:
    from kerasnas.training.runner import NasTuner

log = logging.getLogger(__name__)

# Metrics every trained trial records besides the model's own.
PARAMS = "params"
# Milliseconds per example at batch size 1, measured when an objective needs it.
LATENCY = "latency"
# The epoch in which the time budget stopped a trial's training (absent when it did not).
CUT_SHORT = "cut_short"
# 1 when a trial's network started from trained weights (a morphism parent's, a supernet's).
INHERITED = "inherited"


class Evaluator(Protocol):
    """What the trial runner calls to evaluate a trial."""

    #: Whether trials leave trained models (checkpoints) behind.
    trains: bool
    #: The longest a trial can take, in seconds, when known in advance (else None).
    max_time: float | None

    def session(self, runner: NasTuner) -> contextlib.AbstractContextManager:
        """A context around a whole search."""

    def evaluate(
        self, runner: NasTuner, trial: trial_module.Trial, plan: TrialPlan, fit_kwargs: dict
    ) -> dict[str, float]:
        """The trial's metrics (its objective among them)."""


class TrainedEvaluator:
    """Trains each trial's network (built through its strategy's `model_for_trial`).

    For each trial it writes the architecture to `trial_<id>/architecture.json`,
    seeds Keras, asks the strategy for the epochs, trains (keras-tuner's
    `Tuner.run_trial`: checkpoints, TensorBoard), stops at the time budget's
    deadline and on a NaN loss, and reports the objective's best epoch with
    `params` and `train_time`; afterwards it frees the trial's traced graphs.
    """

    trains = True
    max_time = None

    def session(self, runner: NasTuner) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def evaluate(
        self, runner: NasTuner, trial: trial_module.Trial, plan: TrialPlan, fit_kwargs: dict
    ) -> dict[str, float]:
        arch = runner.space.decode(trial.hyperparameters.values)
        trial_dir = runner.get_trial_dir(trial.trial_id)
        write_json(os.path.join(trial_dir, "architecture.json"), arch.to_config())
        if runner.seed is not None:
            keras.utils.set_random_seed(runner.seed * 100_003 + int(trial.trial_id))
        kwargs = dict(fit_kwargs)
        epochs = runner.strategy_hook("trial_epochs", trial)
        if epochs is not None:  # e.g. a halving rung's or a one-shot search's retrain_epochs
            kwargs["epochs"] = epochs
        deadline = runner.deadline(validation_batches(kwargs))
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), keras.callbacks.TerminateOnNaN()]
        kwargs["callbacks"] += [deadline] if deadline else []
        gradients_before = _memory.custom_gradient_names()
        start = time.perf_counter()
        try:
            with Heartbeat(runner.oracle, trial.trial_id, runner.heartbeat, runner.is_worker()):
                histories, context = runner.fit_trial(trial, plan, kwargs)
            train_time = time.perf_counter() - start
            runner.training_ended(deadline, start)
            check_histories(histories, runner.oracle.objective)
            model = context.model
            needs_latency = LATENCY in objective_inputs(runner.oracle.objective)
            metrics = measure.trial_metrics(
                histories,
                runner.oracle.objective,
                context.params,
                model if needs_latency else None,
                (PARAMS, LATENCY),
            )
        finally:
            release_graphs(gradients_before)
        if deadline is not None and deadline.stopped_in_epoch is not None:
            metrics[CUT_SHORT] = float(deadline.stopped_in_epoch)
            cut_short(trial, deadline.stopped_in_epoch)
        metrics[TRAIN_TIME] = train_time
        metrics.update(context.metrics)
        for name, content in context.files.items():
            write_json(os.path.join(trial_dir, name), content)
        return metrics


class TableEvaluator:
    """Looks each trial up in a table (e.g. a `kerasnas.benchmarks.TabularBenchmark`):
    no model is built. The table's `evaluate(values, rng)` gives the metrics, its
    `time_metric` (when it has one) the trial's `train_time`, and its `max_time`
    the longest a trial can take. A search's store is written in batches.

    Args:
        table: The stand-in for training.
    """

    trains = False

    def __init__(self, table: Any):
        self.table = table
        self.max_time = getattr(table, "max_time", None)
        self.time_metric = getattr(table, "time_metric", None)

    def session(self, runner: NasTuner) -> contextlib.AbstractContextManager:
        write_back = getattr(runner.oracle, "write_back", None)  # kerasnas's trial store has it.
        if runner.is_worker() or write_back is None:
            return contextlib.nullcontext()
        return write_back()

    def evaluate(
        self, runner: NasTuner, trial: trial_module.Trial, plan: TrialPlan, fit_kwargs: dict
    ) -> dict[str, float]:
        rng = query_rng(runner.seed, int(trial.trial_id))
        metrics = dict(self.table.evaluate(trial.hyperparameters.values, rng))
        metrics.setdefault(TRAIN_TIME, metrics[self.time_metric] if self.time_metric else 0.0)
        return metrics


def as_evaluator(evaluator: Any) -> Evaluator:
    """The `Evaluator` of a runner's `evaluator=` argument: None trains the trials; an
    object with `evaluate(values, rng)` (a table) is looked up."""
    if evaluator is None:
        return TrainedEvaluator()
    if isinstance(evaluator, (TrainedEvaluator, TableEvaluator)):
        return evaluator
    return TableEvaluator(evaluator)


def validation_batches(fit_kwargs: dict) -> int | None:
    """The batches of a training's validation pass, or None when unknown (or none)."""
    data = fit_kwargs.get("validation_data")
    if data is None:
        return None
    if isinstance(data, (tuple, list)) and data and hasattr(data[0], "__len__"):
        return -(-len(data[0]) // int(fit_kwargs.get("batch_size") or 32))
    cardinality = getattr(data, "cardinality", None)
    if cardinality is None:
        return None
    count = int(cardinality())
    return count if count > 0 else None


def query_rng(seed: int | None, number: int) -> np.random.Generator:
    """The generator of query `number` of a search seeded `seed` on a stand-in for training.

    The draw of a noisy table depends only on the seed and the trial's number, so
    a resumed search, and a peer run on the same table, draw what a fresh one does.
    """
    return np.random.default_rng([seed or 0, int(number)])


def release_graphs(before: frozenset[str]) -> None:
    """Frees a trial's traced training graphs, which TensorFlow would keep.

    Unregisters the gradient functions that tracing the trial's training step left in
    TensorFlow's global registry (their closures hold the graphs and the model; see
    `kerasnas._memory`): else memory grows with every trial. The next trial's build
    (`keras.backend.clear_session`) collects them, as does Python's own collector; a
    collection here too would cost a second scan of the heap per trial.
    """
    _memory.forget_custom_gradients(before)


def cut_short(trial: trial_module.Trial, epoch: int) -> None:
    """Says that the time budget stopped a trial in `epoch` (a warning when in its first)."""
    number = int(trial.trial_id) + 1
    if epoch > 1:
        log.info("trial %d: the time budget stopped its training in epoch %d", number, epoch)
        return
    log.warning(
        "trial %d: the time budget stopped its training within its first epoch, so it is "
        "scored on part of an epoch; one epoch does not fit the time left. Give a larger "
        "time_budget, fewer training examples, or a smaller space.",
        number,
    )


def check_histories(histories: list, objective: Any) -> None:
    """Raises keras-tuner's errors for a diverged training or a missing objective metric."""
    for history in histories:
        losses = history.history.get("loss", [])
        if any(not math.isfinite(v) for v in losses):
            raise keras_tuner.errors.FailedTrialError(
                f"Training loss became {losses[-1]} at epoch {len(losses)}; "
                "the architecture diverged (try a lower learning rate)."
            )
        missing = [
            n
            for n in objective_inputs(objective)
            if n not in history.history and n not in (PARAMS, LATENCY)
        ]
        if missing:
            raise keras_tuner.errors.FatalValueError(
                f"The objective {missing} is not among the metrics the model "
                f"produces: {sorted(history.history)}. Choose one of those "
                "(metrics starting with 'val_' need validation data)."
            )
