"""The trial runner: builds, trains and scores each trial, through the strategy's hooks.

It knows no particular strategy. For each trial it asks the strategy (a
`kerasnas.oracles.NasOracle`) for the trial's model (`model_for_trial`) and
epochs (`trial_epochs`); once per search it lets the strategy `prepare`
(e.g. train a one-shot supernet), counting that time against the budget.
See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas import _memory, distributed
from kerasnas._io import CorruptStoreError, read_json, write_json
from kerasnas.objectives import objective_inputs
from kerasnas.oracles.base import NasOracle, SearchContext
from kerasnas.recipe import Recipe
from kerasnas.spaces.base import SearchSpace
from kerasnas.training import measure
from kerasnas.training.budget import (
    TRAIN_TIME,
    check_time_budget,
    search_stop_reason,
    trial_times,
)
from kerasnas.training.pacing import DeadlineStop
from kerasnas.training.workers import Heartbeat, IdleWaitingClient

log = logging.getLogger(__name__)

# Metrics every kerasnas trial records besides the model's own.
PARAMS = "params"
# Milliseconds per example at batch size 1, measured when an objective needs it.
LATENCY = "latency"
# The epoch in which the time budget stopped a trial's training (absent when it did not).
CUT_SHORT = "cut_short"
# 1 when a trial's network started from trained weights (a morphism parent's, a supernet's).
INHERITED = "inherited"


def scope(distribution_strategy: Any) -> contextlib.AbstractContextManager:
    """The scope of `distribution_strategy`, or a scope that does nothing for None."""
    if distribution_strategy is None:
        return contextlib.nullcontext()
    return distribution_strategy.scope()


class _TrialBuild:
    """The `kerasnas.oracles.TrialContext` the runner gives `model_for_trial`."""

    def __init__(self, runner: NasTuner, trial: trial_module.Trial, training: bool):
        self.runner, self.trial, self.training = runner, trial, training
        self.seed = (runner.seed or 0) * 100_003 + int(trial.trial_id)
        self.metrics: dict[str, float] = {}
        self.files: dict[str, Any] = {}

    def build(self) -> keras.Model:
        runner = self.runner
        with self.scope():
            model = runner.space.build(self.trial.hyperparameters)
            runner._override_compile_args(model)
        return self.compile(model)

    def compile(self, model: keras.Model) -> keras.Model:
        runner = self.runner
        if runner.recipe is not None:
            with self.scope():
                runner.recipe.compile(model, runner.steps_per_epoch, runner.space.compile_metrics())
        return model

    def scope(self) -> contextlib.AbstractContextManager:
        return scope(self.runner.distribution_strategy)

    def checkpoint(self, trial_id: str) -> str | None:
        path = self.runner._get_checkpoint_fname(trial_id)
        return path if os.path.exists(path) else None

    def record(self, *, metrics: Mapping[str, float] = (), files: Mapping[str, Any] = ()) -> None:
        self.metrics.update(metrics)
        self.files.update(files)


def with_undeclared_values(trial: trial_module.Trial) -> trial_module.Trial:
    """The trial, or a copy whose hyperparameters also declare its undeclared values.

    keras-tuner gives TensorBoard's HParams the declared hyperparameters only. A
    strategy's undeclared values (e.g. a morphism lineage) would be missing, and the
    trial would look like another in the HParams dashboard.
    """
    hp = trial.hyperparameters
    declared = {h.name for h in hp.space}
    undeclared = {k: v for k, v in hp.values.items() if k not in declared}
    if not undeclared:
        return trial
    hp = hp.copy()
    for name, value in undeclared.items():
        hp.Fixed(name, value)
    trial = copy.copy(trial)
    trial.hyperparameters = hp
    return trial


class NasTuner(keras_tuner.Tuner):
    """kerasnas's trial runner: a keras-tuner `Tuner` that trains what a strategy proposes.

    For each trial it decodes the architecture, writes it to
    `trial_<id>/architecture.json`, asks the strategy for the model
    (`model_for_trial`) and the epochs (`trial_epochs`), trains it (under
    `distribution_strategy` when given), and reports the objective's best
    epoch together with the parameter count (`params`) and the wall-clock
    build-and-train time in seconds (`train_time`). A trial whose loss becomes
    NaN is stopped and recorded as failed, with the reason in its message.
    It logs one line per trial instead of keras-tuner's tables.

    Args:
        oracle: A `kerasnas.oracles.NasOracle` (or any keras-tuner Oracle,
            which then builds every trial with the space).
        space: The `kerasnas.spaces.SearchSpace` that builds the models.
        seed: Seeds Keras's random state at the start of each trial, so a
            trial's initial weights depend only on the seed and trial id.
        progress: Whether to log a line per trial.
        mixed_precision: Build models under Keras's `mixed_float16` policy
            (float16 compute, float32 weights; faster on recent GPUs, slower on
            CPUs). Defaults to False.
        jit_compile: Compile each model's training step with XLA. Defaults
            to False.
        heartbeat: In chief/worker mode, seconds between a worker's
            heartbeats to the chief while it trains a trial. Defaults to
            `$KERASNAS_HEARTBEAT` or 15.
        time_budget: Wall-clock seconds the search may take, counting the
            train time of trials finished in earlier runs of the project and
            the strategy's `prepare` (e.g. supernet training). No trial starts
            when the time used plus the longest finished trial's time plus
            `reserve` would exceed it. Defaults to None (no budget).
        reserve: Seconds of the budget kept free, e.g. for a final training
            after the search. Defaults to 0.
        recipe: A `kerasnas.Recipe` that compiles each trial's model
            (optimizer, schedule, weight decay, label smoothing) in place of
            the space's own compile; its schedule is laid out over
            `steps_per_epoch` (set before the search). None keeps the space's.
        evaluator: Optional stand-in for training, such as a
            `kerasnas.benchmarks.TabularBenchmark`: an object with
            `evaluate(values, rng) -> {metric: value}` (and optionally
            `time_metric` and `max_time`). Trials then build no model.
        **kwargs: Other `keras_tuner.Tuner` arguments (`directory`,
            `project_name`, `overwrite`, `distribution_strategy`,
            `max_model_size`, `executions_per_trial`, ...).
    """

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        space: SearchSpace,
        *,
        seed: int | None = None,
        progress: bool = True,
        evaluator: Any = None,
        heartbeat: float | None = None,
        mixed_precision: bool = False,
        jit_compile: bool = False,
        time_budget: float | None = None,
        reserve: float = 0.0,
        recipe: Recipe | None = None,
        **kwargs: Any,
    ):
        check_time_budget(time_budget, reserve)
        self.recipe = recipe
        self.steps_per_epoch = 1  # Set by `Search.fit` when a recipe needs it.
        self.time_budget = time_budget
        self.reserve = float(reserve)
        self._time_before = 0.0  # Seconds used by earlier runs of the project.
        self._prepare_seconds = 0.0  # Seconds the strategy's `prepare` took, all runs.
        self.space = space
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.seed = seed
        self.progress = progress
        self.evaluator = evaluator
        # The strategy itself: on a worker `self.oracle` becomes a client of the chief's.
        self.strategy = oracle
        if isinstance(oracle, NasOracle):
            oracle.attach_runner()
        super().__init__(oracle=oracle, hypermodel=space, **kwargs)
        self.oracle.verbose = 0  # kerasnas reports its own progress lines.
        if heartbeat is None:
            heartbeat = float(os.environ.get("KERASNAS_HEARTBEAT", 15))
        self.heartbeat = heartbeat
        if self._is_worker():
            self.oracle = IdleWaitingClient(self.oracle, min(self.heartbeat, 2.0))
        self._search_start = time.perf_counter()
        self._fit_args: tuple[tuple, dict] = ((), {})
        self._build: _TrialBuild | None = None  # Of the trial being trained.
        self._params: int | None = None
        self._model: keras.Model | None = None
        # Custom-gradient registrations that predate the current trial (see `kerasnas._memory`).
        self._gradients_before: frozenset[str] = frozenset()

    # -- Building models through the strategy's hook ---------------------------
    def _populate_initial_space(self) -> None:
        # The space declares its decisions; no model needs to be built for it.
        hp = self.oracle.get_space()
        self.space.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def build_model(self, trial: trial_module.Trial) -> keras.Model:
        """A trial's network as its strategy builds it, with fresh weights (to load the
        trial's checkpoint into, or to retrain it); checked against `max_model_size`."""
        self._build = _TrialBuild(self, trial, training=False)
        try:
            return self._try_build(trial.hyperparameters)
        finally:
            self._build = None

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        # Runs after keras-tuner's clear_session(), which resets the dtype policy.
        build = self._build
        if build is None or build.trial.hyperparameters is not hp:
            build = _TrialBuild(self, trial_module.Trial(hp, trial_id="0"), False)
        previous = keras.config.dtype_policy()
        if self.mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
        try:
            if isinstance(self.strategy, NasOracle):
                return self.strategy.model_for_trial(build.trial, build)
            return build.build()
        finally:
            keras.config.set_dtype_policy(previous)

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = super()._try_build(hp)
        if self.jit_compile:
            model.jit_compile = True
        self._params = int(model.count_params())
        self._model = model if self._needs(LATENCY) else None
        return model

    def load_model(self, trial: trial_module.Trial) -> keras.Model:
        """The trained model of a finished trial (weights of its best epoch)."""
        if self.evaluator is not None:
            raise ValueError(
                "The trials of this search were looked up in a table, so no model was "
                "trained. Build the architecture with search.space.build(arch) and train it."
            )
        path = self._get_checkpoint_fname(trial.trial_id)
        if not os.path.exists(path):
            raise CorruptStoreError(
                f"The trained weights of trial {trial.trial_id} ({path}) are missing. "
                "search.retrain(x, y, ...) trains its network again from scratch."
            )
        model = self.build_model(trial)
        with scope(self.distribution_strategy), warnings.catch_warnings():
            # The checkpoint holds weights only; the optimizer starts afresh.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(path)
        return model

    def _configure_tensorboard_dir(
        self, callbacks: list, trial: trial_module.Trial, execution: int = 0
    ) -> None:
        super()._configure_tensorboard_dir(callbacks, with_undeclared_values(trial), execution)

    def _needs(self, metric: str) -> bool:
        objective = self.oracle.objective
        return metric == objective.name or metric in getattr(objective, "inputs", ())

    # -- State and time --------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "prepare_seconds": self._prepare_seconds}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._prepare_seconds = float(state.get("prepare_seconds", 0.0))

    def save(self) -> None:
        """Writes the tuner's file and (on the chief) the oracle's."""
        if not self._is_worker():
            self.oracle.save()
        if getattr(self.oracle, "should_report", True):  # Not a non-chief replica.
            write_json(self._get_tuner_fname(), self.get_state())

    def reload(self) -> None:
        if not self._is_worker():
            self.oracle.reload()
        self.set_state(read_json(self._get_tuner_fname()))

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        self._fit_args = (fit_args, fit_kwargs)
        if distributed.is_chief():  # keras-tuner's chief serves trials, with no on_search_begin.
            self.on_search_begin()
        with store_writes(self):
            super().search(*fit_args, **fit_kwargs)

    def on_search_begin(self) -> None:
        self._search_start = time.perf_counter()
        # Only the chief holds the trials (a worker's oracle is a gRPC client).
        worker = self._is_worker()
        self._time_before = 0.0 if worker else sum(trial_times(self.oracle)) + self._prepare_seconds
        self.oracle.verbose = 0  # `search(verbose=...)` turned keras-tuner's display on.
        if not worker and isinstance(self.strategy, NasOracle):
            self._prepare()
        if not worker:
            self.save()  # The tuner's file marks the project as one to resume.

    def _prepare(self) -> None:
        """Runs the strategy's `prepare` hook; its time counts against the budget."""
        args, kwargs = self._fit_args
        context = SearchContext(
            train=args[0] if args else kwargs.get("x"),
            validation=kwargs.get("validation_data"),
            directory=self.project_dir,
            distribution_strategy=self.distribution_strategy,
            progress=self.progress,
        )
        start = time.perf_counter()
        self.strategy.prepare(context)
        self._prepare_seconds += time.perf_counter() - start

    def time_used(self) -> float:
        """Seconds of the time budget used: this run's wall time plus earlier runs'."""
        return self._time_before + (time.perf_counter() - self._search_start)

    def pre_create_trial(self) -> None:
        max_time = getattr(self.evaluator, "max_time", None)
        if not self._is_worker() and (max_time is not None or self.time_budget is not None):
            times = trial_times(self.oracle)
            reason = search_stop_reason(
                times, self.time_used(), max_time, self.time_budget, self.reserve
            )
            if reason is not None:
                self.oracle.request_stop(reason)

    # -- Running a trial -----------------------------------------------------------
    def run_trial(self, trial: trial_module.Trial, *args: Any, **kwargs: Any) -> dict:
        if self.evaluator is not None:
            return self._with_objective(look_up(self.evaluator, trial, self.seed))
        arch = self.space.decode(trial.hyperparameters.values)
        write_json(
            os.path.join(self.get_trial_dir(trial.trial_id), "architecture.json"),
            arch.to_config(),
        )
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed * 100_003 + int(trial.trial_id))
        if isinstance(self.strategy, NasOracle):
            epochs = self.strategy.trial_epochs(trial)
            if epochs is not None:  # e.g. a one-shot search's retrain_epochs
                kwargs["epochs"] = epochs
        deadline = None
        if self.time_budget is not None and not self._is_worker():
            left = self.time_budget - self.reserve
            deadline = DeadlineStop(lambda: left - self.time_used())
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), keras.callbacks.TerminateOnNaN()]
        kwargs["callbacks"] += [deadline] if deadline else []
        start = time.perf_counter()
        self._build = build = _TrialBuild(self, trial, training=True)
        try:
            with Heartbeat(self.oracle, trial.trial_id, self.heartbeat, self._is_worker()):
                histories = super().run_trial(trial, *args, **kwargs)
        finally:
            self._build = None
        train_time = time.perf_counter() - start
        check_histories(histories, self.oracle.objective)
        metrics = measure.trial_metrics(
            histories, self.oracle.objective, self._params or 0, self._model, (PARAMS, LATENCY)
        )
        self._model = None
        if deadline is not None and deadline.stopped_in_epoch is not None:
            metrics[CUT_SHORT] = float(deadline.stopped_in_epoch)
            cut_short(trial, deadline.stopped_in_epoch)
        metrics[TRAIN_TIME] = train_time
        metrics.update(build.metrics)
        for name, content in build.files.items():
            write_json(os.path.join(self.get_trial_dir(trial.trial_id), name), content)
        return self._with_objective(metrics)

    def _with_objective(self, metrics: dict) -> dict:
        """Adds a derived objective (e.g. `ResourceConstrained`) computed from the metrics."""
        compute = getattr(self.oracle.objective, "compute", None)
        if compute is not None:
            metrics[self.oracle.objective.name] = compute(metrics)
        return metrics

    def on_trial_begin(self, trial: trial_module.Trial) -> None:
        super().on_trial_begin(trial)
        if self.evaluator is None:  # A table lookup traces no graph.
            self._gradients_before = _memory.custom_gradient_names()

    def on_trial_end(self, trial: trial_module.Trial) -> None:
        try:  # Ending a trial raises when too many failed in a row: report it all the same.
            # It saves the trial and the oracle's state (the tuner's changes only in prepare).
            self.oracle.end_trial(trial)
        finally:
            release_trial_graphs(self)
            if self.progress:
                log.info(progress_line(self, self.oracle.get_trial(trial.trial_id)))


def store_writes(runner: NasTuner) -> contextlib.AbstractContextManager:
    """Trials looked up in a table take microseconds, writing them to the store
    milliseconds: such a search writes its store in batches (`StoredOracle.write_back`)."""
    write_back = getattr(runner.oracle, "write_back", None)  # kerasnas's trial store has it.
    if runner.evaluator is None or runner._is_worker() or write_back is None:
        return contextlib.nullcontext()
    return write_back()


def release_trial_graphs(runner: NasTuner) -> None:
    """Frees the trial's traced training graphs, which TensorFlow would keep.

    Unregisters the gradient functions that tracing the trial's training step left in
    TensorFlow's global registry (their closures hold the graphs and the model; see
    `kerasnas._memory`), then collects them: else memory grows with every trial.
    """
    if runner.evaluator is None and _memory.forget_custom_gradients(runner._gradients_before):
        gc.collect()
    runner._gradients_before = frozenset()


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


def network_hash(strategy: Any, space: SearchSpace, trial: trial_module.Trial) -> str:
    """The hash of the network a trial trains, as its strategy names it."""
    values = trial.hyperparameters.values
    if isinstance(strategy, NasOracle):
        return strategy.network_hash(values)
    return space.decode(values).hash()


def query_rng(seed: int | None, number: int) -> np.random.Generator:
    """The generator of query `number` of a search seeded `seed` on a stand-in for training.

    The draw of a noisy table depends only on the seed and the trial's number, so
    a resumed search, and a peer run on the same table, draw what a fresh one does.
    """
    return np.random.default_rng([seed or 0, int(number)])


def look_up(evaluator: Any, trial: trial_module.Trial, seed: int | None) -> dict:
    """A trial's metrics from a stand-in for training (e.g. a tabular benchmark)."""
    rng = query_rng(seed, int(trial.trial_id))
    metrics = dict(evaluator.evaluate(trial.hyperparameters.values, rng))
    time_metric = getattr(evaluator, "time_metric", None)
    metrics.setdefault(TRAIN_TIME, metrics[time_metric] if time_metric else 0.0)
    return metrics


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


def progress_line(runner: NasTuner, trial: trial_module.Trial) -> str:
    """The line logged when a trial ends: its score, the best so far, size, times."""
    objective = runner.oracle.objective
    number = int(trial.trial_id) + 1
    elapsed = time.perf_counter() - runner._search_start
    arch = network_hash(runner.strategy, runner.space, trial)[:8]
    head = f"trial {number}/{runner.oracle.max_trials} arch={arch}"
    if isinstance(runner.strategy, NasOracle):
        head += runner.strategy.progress_note(trial)
    if trial.status != trial_module.TrialStatus.COMPLETED:
        reason = (trial.message or "").strip().splitlines()
        return f"{head} {trial.status}: {reason[-1] if reason else ''} elapsed={elapsed:.1f}s"
    best = runner.oracle.get_best_trials(1)
    best_score = best[0].score if best else float("nan")
    params = trial.metrics.get_last_value(PARAMS) if trial.metrics.exists(PARAMS) else 0
    seconds = trial.metrics.get_last_value(TRAIN_TIME)
    budget = ""
    if runner.time_budget is not None:
        budget = f" budget_left={max(runner.time_budget - runner.time_used(), 0.0):.0f}s"
    return (
        f"{head} {objective.name}={trial.score:.4f} best={best_score:.4f} "
        f"params={int(params):,} time={seconds:.1f}s elapsed={elapsed:.1f}s{budget}"
    )
