"""The trial runner: keras-tuner's `Tuner`, driving a strategy and an evaluator.

It knows no particular strategy and no particular evaluator. keras-tuner's
loop asks the strategy (a `kerasnas.oracles.NasOracle`) for trials; for each,
the runner hands the trial and its plan to its `Evaluator`
(`kerasnas.training.evaluators`: train the network, or look it up in a table)
and the store records the metrics. A trained trial's model comes from the
strategy's `model_for_trial` hook, given an explicit `TrialBuild` context; once
per search the strategy may `prepare` (e.g. train a one-shot supernet), its time
counted against the budget. See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine import trial as trial_module

from kerasnas import plan as plan_module
from kerasnas import report
from kerasnas._io import read_json, write_json
from kerasnas.errors import CorruptStoreError
from kerasnas.oracles.base import NasOracle, SearchContext
from kerasnas.plan import TrialPlan
from kerasnas.recipe import Recipe
from kerasnas.spaces.base import SearchSpace
from kerasnas.training.budget import (
    TRAIN_TIME,
    check_time_budget,
    search_stop_reason,
    trial_times,
)
from kerasnas.training.evaluators import (
    CUT_SHORT,
    INHERITED,
    LATENCY,
    PARAMS,
    Evaluator,
    as_evaluator,
)
from kerasnas.training.pacing import DeadlineStop
from kerasnas.training.workers import IdleWaitingClient

log = logging.getLogger(__name__)

#: Seconds kept free at the end of a time budget for the search's last words (its table).
END_SECONDS = 1.0

__all__ = ["CUT_SHORT", "INHERITED", "LATENCY", "PARAMS", "TRAIN_TIME", "NasTuner", "TrialBuild"]


def scope(distribution_strategy: Any) -> contextlib.AbstractContextManager:
    """The scope of `distribution_strategy`, or a scope that does nothing for None."""
    if distribution_strategy is None:
        return contextlib.nullcontext()
    return distribution_strategy.scope()


class TrialBuild:
    """The `kerasnas.oracles.TrialContext` the runner gives `model_for_trial`.

    Args:
        runner: The runner that builds the trial.
        trial: The trial.
        plan: Its `TrialPlan`.
        training: Whether the model is built to train the trial.
        recipe: The `kerasnas.Recipe` that compiles it (None: the space's compile).
        steps_per_epoch: Training steps per epoch, for the recipe's schedule.
    """

    def __init__(
        self,
        runner: NasTuner,
        trial: trial_module.Trial,
        plan: TrialPlan,
        training: bool,
        recipe: Recipe | None = None,
        steps_per_epoch: int = 1,
    ):
        self.runner, self.trial, self.plan, self.training = runner, trial, plan, training
        self.recipe, self.steps_per_epoch = recipe, steps_per_epoch
        self.seed = (runner.seed or 0) * 100_003 + int(trial.trial_id)
        self.metrics: dict[str, float] = {}
        self.files: dict[str, Any] = {}
        self.model: keras.Model | None = None  # Once built.
        self.params = 0

    def build(self) -> keras.Model:
        space = self.runner.space
        with self.scope():
            model = space.build(self.trial.hyperparameters)
            self.runner._override_compile_args(model)
        return self.compile(model)

    def compile(self, model: keras.Model) -> keras.Model:
        if self.recipe is not None:
            with self.scope():
                self.recipe.compile(
                    model, self.steps_per_epoch, self.runner.space.compile_metrics()
                )
        return model

    def scope(self) -> contextlib.AbstractContextManager:
        return scope(self.runner.distribution_strategy)

    def checkpoint(self, trial_id: str) -> str | None:
        path = self.runner._get_checkpoint_fname(trial_id)
        return path if os.path.exists(path) else None

    def record(self, *, metrics: Mapping[str, float] = (), files: Mapping[str, Any] = ()) -> None:
        self.metrics.update(metrics)
        self.files.update(files)


class BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of a trial's best epoch by its objective, in memory, and writes
    them once when the trial ends (keras-tuner's `SaveBestEpoch` wrote a file at every
    better epoch). Without the objective in an epoch's logs, every epoch counts as best.

    Args:
        objective: The search's `keras_tuner.Objective`.
    """

    def __init__(self, objective: Any):
        super().__init__()
        self.objective = objective
        self.best_value: float | None = None
        self._best: tuple[keras.Model, list] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.objective.has_value(logs):
            value = self.objective.get_value(logs)
            if self.best_value is not None and not self.objective.better_than(
                value, self.best_value
            ):
                return
            self.best_value = value
        self._best = (self.model, self.model.get_weights())

    def save(self, path: str) -> None:
        """Writes the best epoch's weights to `path` (nothing when no epoch ended)."""
        if self._best is None:
            return
        model, weights = self._best
        model.set_weights(weights)
        model.save_weights(path)
        self._best = None


class NasTuner(keras_tuner.Tuner):
    """kerasnas's trial runner: a keras-tuner `Tuner` that evaluates what a strategy proposes.

    For each trial it hands the trial and its plan to its evaluator: by
    default a `TrainedEvaluator`, which builds the model through the strategy's
    `model_for_trial` hook, trains it (under `distribution_strategy` when given)
    and reports the objective's best epoch with the parameter count (`params`)
    and the wall-clock build-and-train time in seconds (`train_time`); a trial
    whose loss becomes NaN fails, with the reason in its message. It logs one
    line per trial instead of keras-tuner's tables.

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
            the strategy's `prepare` (e.g. supernet training). A trial starts
            when its first epoch fits (see `kerasnas.Search`); its training is
            stopped at the deadline. Defaults to None (no budget).
        reserve: Seconds of the budget kept free, e.g. for a final training
            after the search. Defaults to 0.
        recipe: A `kerasnas.Recipe` that compiles each trial's model
            (optimizer, schedule, weight decay, label smoothing) in place of
            the space's own compile; `search(..., recipe=, steps_per_epoch=)`
            gives a search's own. None keeps the space's.
        evaluator: How trials are evaluated: None trains them; a
            `kerasnas.training.evaluators` evaluator; or a stand-in for
            training such as a `kerasnas.benchmarks.TabularBenchmark` (an
            object with `evaluate(values, rng) -> {metric: value}`, and
            optionally `time_metric` and `max_time`), whose trials then build
            no model.
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
        self.time_budget = time_budget
        self.reserve = float(reserve)
        self._time_before = 0.0  # Seconds used by earlier runs of the project.
        self._prepare_seconds = 0.0  # Seconds the strategy's `prepare` took, all runs.
        self.space = space
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.seed = seed
        self.progress = progress
        self.evaluator: Evaluator = as_evaluator(evaluator)
        # The strategy itself: on a worker `self.oracle` becomes a client of the chief's.
        self.strategy = oracle
        self._hooks = oracle if isinstance(oracle, NasOracle) else None
        if self._hooks is not None:
            oracle.attach_runner()
        super().__init__(oracle=oracle, hypermodel=space, **kwargs)
        self.oracle.verbose = 0  # kerasnas reports its own progress lines.
        if heartbeat is None:
            heartbeat = float(os.environ.get("KERASNAS_HEARTBEAT", 15))
        self.heartbeat = heartbeat
        if self._is_worker():
            self.oracle = IdleWaitingClient(self.oracle, min(self.heartbeat, 2.0))
        self._search_start = time.perf_counter()
        # What the search trains with: `search(recipe=, steps_per_epoch=)`.
        self._training = (recipe, 1)
        # Seconds the time budget keeps free before a trial's deadline: the longest
        # validation pass, and the longest work after a training (scoring, store,
        # progress line), measured in this run.
        self.validation_seconds = 0.0
        self._after_training = 0.0
        self._training_ended: float | None = None
        # The longest time from a trial's start to the end of its first epoch (its
        # validation pass included) in this run: what a trial needs to be scored.
        self._first_epoch: float | None = None

    def is_worker(self) -> bool:
        """Whether this runner is a worker of a chief (in chief/worker mode)."""
        return self._is_worker()

    def strategy_hook(self, name: str, trial: trial_module.Trial) -> Any:
        """The strategy's hook `name` on a trial (None for a plain keras-tuner Oracle)."""
        return None if self._hooks is None else getattr(self._hooks, name)(trial)

    def plan(self, trial: trial_module.Trial) -> TrialPlan:
        """The trial's plan (a plain keras-tuner Oracle's trials have none)."""
        if self._hooks is None:
            return plan_module.NONE
        return self._hooks.plan(trial.trial_id)

    # -- Building models through the strategy's hook ---------------------------
    def _populate_initial_space(self) -> None:
        # The space declares its decisions; no model needs to be built for it.
        hp = self.oracle.get_space()
        self.space.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def build_model(self, trial: trial_module.Trial) -> keras.Model:
        """A trial's network as its strategy builds it, with fresh weights (to load the
        trial's checkpoint into, or to retrain it); checked against `max_model_size`."""
        recipe, steps = self._training
        context = TrialBuild(self, trial, self.plan(trial), False, recipe, steps)
        return self._build(context)

    def _build(self, context: TrialBuild) -> keras.Model:
        """The trial's model from the strategy's hook (the space's for a plain Oracle)."""
        keras.backend.clear_session()
        previous = keras.config.dtype_policy()  # clear_session() reset it.
        if self.mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
        try:
            if self._hooks is not None:
                model = self._hooks.model_for_trial(context.trial, context)
            else:
                model = context.build()
        finally:
            keras.config.set_dtype_policy(previous)
        size = int(model.count_params())
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model."
            )
        if self.jit_compile:
            model.jit_compile = True
        context.model, context.params = model, size
        return model

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        # keras-tuner's own calls (none in kerasnas's paths) build the space's model.
        trial = trial_module.Trial(hp, trial_id="0")
        return self._build(TrialBuild(self, trial, plan_module.NONE, False, *self._training))

    def fit_trial(
        self, trial: trial_module.Trial, plan: TrialPlan, fit_kwargs: dict
    ) -> tuple[list, TrialBuild]:
        """Builds and trains a trial (`executions_per_trial` times, each with a copy of the
        callbacks and its TensorBoard folder), then writes the weights of its best epoch to
        its checkpoint: its histories and its build context."""
        recipe, steps = self._training
        context = TrialBuild(self, trial, plan, True, recipe, steps)
        kwargs = dict(fit_kwargs)
        callbacks = kwargs.pop("callbacks", None) or []
        best = BestEpoch(self.oracle.objective)
        histories = []
        for execution in range(self.executions_per_trial):
            copied = self._deepcopy_callbacks(callbacks)
            self._configure_tensorboard_dir(copied, trial, execution)
            model = self._build(context)
            history = self.hypermodel.fit(
                trial.hyperparameters, model, **kwargs, callbacks=[*copied, best]
            )
            histories.append(history)
        best.save(self._get_checkpoint_fname(trial.trial_id))
        return histories, context

    def _configure_tensorboard_dir(
        self, callbacks: list, trial: trial_module.Trial, execution: int = 0
    ) -> None:
        # TensorBoard's HParams get the architecture's decisions and, to tell apart trials
        # of one architecture (a morphism child and its root, halving's rungs), the
        # network's hash and the trial's plan: report-only values, not trial values.
        hp = trial.hyperparameters.copy()
        hp.Fixed("network", self.network_hash(trial))
        plan = self.plan(trial)
        if plan:
            hp.Fixed("plan", json.dumps(plan.to_config(), sort_keys=True))
        shown = copy.copy(trial)
        shown.hyperparameters = hp
        super()._configure_tensorboard_dir(callbacks, shown, execution)

    def load_model(self, trial: trial_module.Trial) -> keras.Model:
        """The trained model of a finished trial (weights of its best epoch)."""
        if not self.evaluator.trains:
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

    def search(
        self,
        *fit_args: Any,
        recipe: Recipe | None = None,
        steps_per_epoch: int = 1,
        started: float | None = None,
        **fit_kwargs: Any,
    ) -> None:
        """Runs the search: each trial's `model.fit` takes `fit_args` and `fit_kwargs`
        (the training data first), its model compiled with `recipe` (default: the
        runner's) laid out over `steps_per_epoch`. `started` is the `time.perf_counter()`
        at which the caller's search began (the time budget counts from it; default now).
        """
        self._training = (recipe if recipe is not None else self.recipe, steps_per_epoch)
        x = fit_args[0] if fit_args else fit_kwargs.get("x")
        self._begin(x, fit_kwargs.get("validation_data"), started)
        with self.evaluator.session(self):
            super().search(*fit_args, **fit_kwargs)

    def on_search_begin(self) -> None:
        pass  # `search` began it, with the data (`_begin`); keras-tuner's chief skips this.

    def _begin(self, x: Any, validation_data: Any, started: float | None = None) -> None:
        self._search_start = time.perf_counter() if started is None else started
        # Only the chief holds the trials (a worker's oracle is a gRPC client).
        worker = self._is_worker()
        self._time_before = 0.0 if worker else sum(trial_times(self.oracle)) + self._prepare_seconds
        self.oracle.verbose = 0  # `search(verbose=...)` turned keras-tuner's display on.
        if not worker and self._hooks is not None:
            context = SearchContext(
                train=x,
                validation=validation_data,
                directory=self.project_dir,
                distribution_strategy=self.distribution_strategy,
                progress=self.progress,
            )
            start = time.perf_counter()
            self._hooks.prepare(context)  # Its time counts against the budget.
            self._prepare_seconds += time.perf_counter() - start
        if not worker:
            self.save()  # The tuner's file marks the project as one to resume.

    def time_used(self) -> float:
        """Seconds of the time budget used: this run's wall time plus earlier runs'."""
        return self._time_before + (time.perf_counter() - self._search_start)

    def deadline(self, validation_batches: int | None = None) -> DeadlineStop | None:
        """A callback that stops a trial's training in time for the search to end with the
        budget (less `reserve`): after its validation pass (of `validation_batches`
        batches, when known) and the work after a trial."""
        if self.time_budget is None or self._is_worker():
            return None
        left = self.time_budget - self.reserve
        return DeadlineStop(
            lambda: left - self.time_used(),
            margin=lambda: self._after_training + END_SECONDS,
            validation_seconds=self.validation_seconds,
            validation_batches=validation_batches,
        )

    def training_ended(self, deadline: DeadlineStop | None, started: float) -> None:
        """Called by the evaluator when a trial's training (begun at `started`, a
        `time.perf_counter()` value, its build included) ends: times what follows."""
        self._training_ended = time.perf_counter()
        if deadline is not None:
            self.validation_seconds = max(self.validation_seconds, deadline.validation_seconds)
            if deadline.first_epoch_end is not None:
                first = deadline.first_epoch_end - started
                self._first_epoch = max(self._first_epoch or 0.0, first)

    def pre_create_trial(self) -> None:
        max_time = self.evaluator.max_time
        if not self._is_worker() and (max_time is not None or self.time_budget is not None):
            times = trial_times(self.oracle)
            # A trial also needs the work after its training, and the search its last words.
            used = self.time_used() + (self._after_training + END_SECONDS) * bool(times)
            # A trial starts when its first epoch fits: the deadline then stops it after
            # the last epoch that fits.
            next_trial = max(times, default=0.0)
            if self._first_epoch is not None:
                next_trial = min(next_trial, self._first_epoch)
            reason = search_stop_reason(
                times, used, max_time, self.time_budget, self.reserve, next_trial
            )
            if reason is not None:
                self.oracle.request_stop(reason)

    # -- Running a trial -----------------------------------------------------------
    def run_trial(self, trial: trial_module.Trial, *args: Any, **kwargs: Any) -> dict:
        fit_kwargs = {**dict(zip(("x", "y"), args, strict=False)), **kwargs}  # fit's x, y
        metrics = self.evaluator.evaluate(self, trial, self.plan(trial), fit_kwargs)
        compute = getattr(self.oracle.objective, "compute", None)
        if compute is not None:  # A derived objective (e.g. `ResourceConstrained`).
            metrics[self.oracle.objective.name] = compute(metrics)
        return metrics

    def on_trial_end(self, trial: trial_module.Trial) -> None:
        try:  # Ending a trial raises when too many failed in a row: report it all the same.
            # It saves the trial and the oracle's state (the tuner's changes only in prepare).
            self.oracle.end_trial(trial)
        finally:
            if self.progress:
                log.info(report.progress_line(self, self.oracle.get_trial(trial.trial_id)))
            if self._training_ended is not None:
                after = time.perf_counter() - self._training_ended
                self._after_training = max(self._after_training, after)
                self._training_ended = None

    def network_hash(self, trial: trial_module.Trial) -> str:
        """The hash of the network a trial trains, as its strategy names it."""
        if self._hooks is not None:
            return self._hooks.network_hash(trial)
        return self.space.decode(trial.hyperparameters.values).hash()
