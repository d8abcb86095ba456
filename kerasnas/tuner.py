"""NasTuner: builds, trains and scores one trial's architecture."""

from __future__ import annotations

import copy
import gc
import math
import os
import threading
import time
import warnings
from typing import Any

import keras
import keras_tuner
import numpy as np
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine import tuner_utils
from keras_tuner.src.engine.tuner import maybe_distribute

from kerasnas import _memory, morph
from kerasnas._io import read_json, write_json
from kerasnas.morph import lineage
from kerasnas.objectives import objective_inputs
from kerasnas.oneshot.supernet import INIT_KEY
from kerasnas.recipe import Recipe
from kerasnas.spaces.base import SearchSpace, compile_classifier

# Metrics every kerasnas trial records besides the model's own.
PARAMS = "params"
TRAIN_TIME = "train_time"
# Milliseconds per example at batch size 1, measured when an objective needs it.
LATENCY = "latency"
# 1 when a morphism child started from its parent's trained weights, 0 when from scratch.
INHERITED = "inherited"


class NasTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` that trains the architectures an oracle proposes.

    For each trial it decodes the architecture, writes it to
    `trial_<id>/architecture.json`, builds and trains the model (under
    `distribution_strategy` when given), and reports the objective's best
    epoch together with the parameter count (`params`) and the wall-clock
    build-and-train time in seconds (`train_time`). A trial whose loss becomes
    NaN is stopped and recorded as failed, with the reason in its message.
    It prints one line per trial instead of keras-tuner's tables.

    Args:
        oracle: A `kerasnas.oracles.NasOracle` (or any keras-tuner Oracle).
        space: The `kerasnas.spaces.SearchSpace` that builds the models.
        seed: Seeds Keras's random state at the start of each trial, so a
            trial's initial weights depend only on the seed and trial id.
        progress: Whether to print a line per trial.
        mixed_precision: Build models under Keras's `mixed_float16` policy
            (float16 compute, float32 weights; faster on recent GPUs, slower on
            CPUs). Defaults to False.
        jit_compile: Compile each model's training step with XLA. Defaults
            to False.
        heartbeat: In chief/worker mode, seconds between a worker's
            heartbeats to the chief while it trains a trial. Defaults to
            `$KERASNAS_HEARTBEAT` or 15.
        time_budget: Wall-clock seconds the search may take, counting the
            train time of trials finished in earlier runs of the project. No
            trial starts when the time used plus the longest finished
            trial's time plus `reserve` would exceed it. Defaults to None
            (no budget).
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
        self._time_before = 0.0  # Train time of the trials finished before this run.
        self.space = space
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.seed = seed
        self.progress = progress
        self.evaluator = evaluator
        super().__init__(oracle=oracle, hypermodel=space, **kwargs)
        self.oracle.verbose = 0  # kerasnas prints its own progress lines.
        if heartbeat is None:
            heartbeat = float(os.environ.get("KERASNAS_HEARTBEAT", 15))
        self.heartbeat = heartbeat
        if self._is_worker():
            self._wait_when_idle()
        self._search_start = time.perf_counter()
        self._params: int | None = None
        self._model: keras.Model | None = None
        # The trial being trained, and whether its network inherited its parent's weights.
        self._training: trial_module.Trial | None = None
        self._inheritance: dict[str, Any] | None = None
        # Custom-gradient registrations that predate the current trial (see `kerasnas._memory`).
        self._gradients_before: frozenset[str] = frozenset()

    def _populate_initial_space(self) -> None:
        # The space declares its decisions; no model needs to be built for it.
        hp = self.oracle.get_space()
        self.space.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        # Runs after keras-tuner's clear_session(), which resets the dtype policy.
        previous = keras.config.dtype_policy()
        if self.mixed_precision:
            keras.config.set_dtype_policy("mixed_float16")
        try:
            if INIT_KEY in hp.values:
                # A one-shot candidate initialised from the supernet: the standalone
                # model the oracle extracted (with its own compile settings).
                model = self._load_initial_model(hp.values[INIT_KEY])
            else:
                model = super()._build_hypermodel(hp)
            if self.recipe is not None:
                with maybe_distribute(self.distribution_strategy):
                    self.recipe.compile(model, self.steps_per_epoch, self.space.metrics)
            found = lineage.of(hp.values)
            if found is not None and found.ops:
                with maybe_distribute(self.distribution_strategy):
                    model = self._grow(model, found)
            return model
        finally:
            keras.config.set_dtype_policy(previous)

    def _load_initial_model(self, path: str) -> keras.Model:
        if not os.path.exists(path):
            raise keras_tuner.errors.FailedTrialError(
                f"The model this trial starts from, {path}, is missing; the one-shot "
                "files of the project were moved or deleted. Search again with "
                "overwrite=True."
            )
        if self._training is not None:
            self._inheritance = {"inherited": True, "reason": None, "from": path}
        model = keras.models.load_model(path, compile=False)
        return compile_classifier(model, getattr(self.space, "learning_rate", 1e-3))

    def _grow(self, root: keras.Model, found: lineage.Lineage) -> keras.Model:
        """A morphism trial's model: the root grown by its ops.

        When training, the child inherits: the parent is rebuilt (root plus
        the parent's ops), its checkpoint loaded, and the new ops applied
        (keeping the parent's function). Without the parent's checkpoint the
        child starts from scratch, and the trial records why.
        """
        trial = self._training
        if trial is None:  # Loading a trained trial: its own checkpoint follows.
            return morph.apply(root, list(found.ops))
        seed = (self.seed or 0) * 100_003 + int(trial.trial_id)
        checkpoint = self._get_checkpoint_fname(found.parent) if found.parent else None
        record = {"parent": found.parent, "ops": list(found.ops), "new_ops": list(found.new_ops)}
        if checkpoint is not None and os.path.exists(checkpoint):
            # Uncompiled: the checkpoint's optimizer state (its learning rate included)
            # must not reach the child, which is compiled like the root.
            parent = morph.apply(root, list(found.ops[: found.parent_ops]), compile=False)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                parent.load_weights(checkpoint)
            child = morph.apply(
                parent, list(found.new_ops), seed=seed, noise=found.noise, compile=False
            )
            config = root.get_compile_config()
            config["optimizer"] = _scaled_learning_rate(root.optimizer, found.lr_scale)
            child.compile_from_config(config)
            self._inheritance = {**record, "inherited": True, "reason": None}
            return child
        reason = (
            f"the checkpoint of parent trial {found.parent} ({checkpoint}) is missing"
            if checkpoint
            else "the trial has no parent trial"
        )
        if self.progress:
            print(
                f"[kerasnas] trial {int(trial.trial_id) + 1}: {reason}; "
                "training the child network from scratch",
                flush=True,
            )
        self._inheritance = {**record, "inherited": False, "reason": reason}
        return morph.apply(root, list(found.ops), seed=seed)

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = super()._try_build(hp)
        if self.jit_compile:
            model.jit_compile = True
        self._params = int(model.count_params())
        self._model = model if self._needs(LATENCY) else None
        return model

    def _configure_tensorboard_dir(
        self, callbacks: list, trial: trial_module.Trial, execution: int = 0
    ) -> None:
        # keras-tuner gives TensorBoard's HParams the declared hyperparameters only. A
        # morphism child's lineage (morph/*) is in its values but not declared, and without
        # it the child would look like its root in the HParams dashboard.
        hp = trial.hyperparameters
        declared = {h.name for h in hp.space}
        undeclared = {k: v for k, v in hp.values.items() if k not in declared}
        if undeclared:
            hp = hp.copy()
            for name, value in undeclared.items():
                hp.Fixed(name, value)
            trial = copy.copy(trial)
            trial.hyperparameters = hp
        super()._configure_tensorboard_dir(callbacks, trial, execution)

    def _needs(self, metric: str) -> bool:
        objective = self.oracle.objective
        return metric == objective.name or metric in getattr(objective, "inputs", ())

    def save(self) -> None:
        if not self._is_worker():
            self.oracle.save()
        if getattr(self.oracle, "should_report", True):  # Not a non-chief replica.
            write_json(self._get_tuner_fname(), self.get_state())

    def reload(self) -> None:
        if not self._is_worker():
            self.oracle.reload()
        self.set_state(read_json(self._get_tuner_fname()))

    def on_search_begin(self) -> None:
        self._search_start = time.perf_counter()
        # Only the chief holds the trials (a worker's oracle is a gRPC client).
        self._time_before = 0.0 if self._is_worker() else self._train_time_so_far()
        self.oracle.verbose = 0  # `search(verbose=...)` turned keras-tuner's display on.

    def _wait_when_idle(self) -> None:
        """Makes a worker pause between requests while the chief has no trial for it."""
        create_trial = self.oracle.create_trial

        def create_trial_or_wait(tuner_id: str) -> trial_module.Trial:
            trial = create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.IDLE:
                time.sleep(min(self.heartbeat, 2.0))
            return trial

        self.oracle.create_trial = create_trial_or_wait

    def _train_time_so_far(self) -> float:
        return sum(
            t.metrics.get_last_value(TRAIN_TIME) or 0.0
            for t in self.oracle.trials.values()
            if t.metrics.exists(TRAIN_TIME)
        )

    def time_used(self) -> float:
        """Seconds of the time budget used: this run's wall time plus earlier runs' trials."""
        return self._time_before + (time.perf_counter() - self._search_start)

    def pre_create_trial(self) -> None:
        if self._is_worker():
            return
        max_time = getattr(self.evaluator, "max_time", None)
        if max_time is not None:
            used = self._train_time_so_far()
            if used >= max_time:
                self.oracle.request_stop(
                    f"the simulated time budget is spent ({used:.0f} s of max_time={max_time:g} s)"
                )
        if self.time_budget is not None:
            times = [
                t.metrics.get_last_value(TRAIN_TIME)
                for t in self.oracle.trials.values()
                if t.metrics.exists(TRAIN_TIME)
            ]
            reason = budget_stop_reason(
                self.time_used(), max(times, default=0.0), self.reserve, self.time_budget
            )
            if reason is not None:
                self.oracle.request_stop(reason)

    def run_trial(self, trial: trial_module.Trial, *args: Any, **kwargs: Any) -> dict:
        values = trial.hyperparameters.values
        if self.evaluator is not None:
            return self._evaluate(trial)
        arch = self.space.decode(values)
        write_json(
            os.path.join(self.get_trial_dir(trial.trial_id), "architecture.json"),
            arch.to_config(),
        )
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed * 100_003 + int(trial.trial_id))
        trial_epochs = getattr(self.oracle, "trial_epochs", None)
        if trial_epochs is not None:  # e.g. a one-shot search's retrain_epochs
            kwargs["epochs"] = trial_epochs
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [
            keras.callbacks.TerminateOnNaN()
        ]
        start = time.perf_counter()
        self._training, self._inheritance = trial, None
        try:
            with _Heartbeat(self.oracle, trial.trial_id, self.heartbeat, self._is_worker()):
                histories = super().run_trial(trial, *args, **kwargs)
        finally:
            self._training = None
        train_time = time.perf_counter() - start
        objective = self.oracle.objective
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
        # Per-trial measurements are constant over epochs: give them to each history,
        # so that they can be objectives themselves (e.g. minimise `params`).
        measured = {PARAMS: float(self._params or 0)}
        if self._model is not None:
            measured[LATENCY] = _latency_ms(self._model)
            self._model = None
        for history in histories:
            epochs = len(history.history.get("loss", [])) or 1
            for name, value in measured.items():
                history.history[name] = [value] * epochs
        metrics = tuner_utils.convert_to_metrics_dict(histories, objective)
        metrics = {name: float(value) for name, value in metrics.items()}
        metrics[TRAIN_TIME] = train_time
        if self._inheritance is not None:
            metrics[INHERITED] = float(self._inheritance["inherited"])
            if "ops" in self._inheritance:
                write_json(
                    os.path.join(self.get_trial_dir(trial.trial_id), "morph.json"),
                    self._inheritance,
                )
        return self._with_objective(metrics)

    def _with_objective(self, metrics: dict) -> dict:
        """Adds a derived objective (e.g. `ResourceConstrained`) computed from the metrics."""
        compute = getattr(self.oracle.objective, "compute", None)
        if compute is not None:
            metrics[self.oracle.objective.name] = compute(metrics)
        return metrics

    def _evaluate(self, trial: trial_module.Trial) -> dict:
        # The draw of a noisy table depends only on the seed and trial id.
        rng = np.random.default_rng([self.seed or 0, int(trial.trial_id)])
        metrics = dict(self.evaluator.evaluate(trial.hyperparameters.values, rng))
        time_metric = getattr(self.evaluator, "time_metric", None)
        metrics.setdefault(TRAIN_TIME, metrics[time_metric] if time_metric else 0.0)
        return self._with_objective(metrics)

    def load_model(self, trial: trial_module.Trial) -> keras.Model:
        if self.evaluator is not None:
            raise ValueError(
                "The trials of this search were looked up in a table, so no model was "
                "trained. Build the architecture with search.space.build(arch) and train it."
            )
        with warnings.catch_warnings():
            # The checkpoint holds weights only; the optimizer starts afresh.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return super().load_model(trial)

    def on_trial_begin(self, trial: trial_module.Trial) -> None:
        super().on_trial_begin(trial)
        self._gradients_before = _memory.custom_gradient_names()

    def on_trial_end(self, trial: trial_module.Trial) -> None:
        super().on_trial_end(trial)
        self._release_trial_graphs()
        if self.progress:
            print(self._progress_line(self.oracle.get_trial(trial.trial_id)), flush=True)

    def _release_trial_graphs(self) -> None:
        """Frees the trial's traced training graphs, which TensorFlow would keep.

        Unregisters the gradient functions that tracing the trial's training
        step left in TensorFlow's global registry (their closures hold the
        graphs and the model; see `kerasnas._memory`), then collects them.
        Without this, resident memory grows with every trial of a search.
        """
        if _memory.forget_custom_gradients(self._gradients_before):
            gc.collect()
        self._gradients_before = frozenset()

    def _progress_line(self, trial: trial_module.Trial) -> str:
        objective = self.oracle.objective
        total = self.oracle.max_trials
        number = int(trial.trial_id) + 1
        values = trial.hyperparameters.values
        arch = lineage.key(self.space.decode(values), values)[:8]
        elapsed = time.perf_counter() - self._search_start
        head = f"[kerasnas] trial {number}/{total} arch={arch}"
        if trial.status != trial_module.TrialStatus.COMPLETED:
            reason = (trial.message or "").strip().splitlines()
            return f"{head} {trial.status}: {reason[-1] if reason else ''} elapsed={elapsed:.1f}s"
        best = self.oracle.get_best_trials(1)
        best_score = best[0].score if best else float("nan")
        params = trial.metrics.get_last_value(PARAMS) if trial.metrics.exists(PARAMS) else 0
        seconds = trial.metrics.get_last_value(TRAIN_TIME)
        budget = ""
        if self.time_budget is not None:
            budget = f" budget_left={max(self.time_budget - self.time_used(), 0.0):.0f}s"
        return (
            f"{head} {objective.name}={trial.score:.4f} best={best_score:.4f} "
            f"params={int(params):,} time={seconds:.1f}s elapsed={elapsed:.1f}s{budget}"
        )


def check_time_budget(time_budget: float | None, reserve: float) -> None:
    """Raises ValueError unless `time_budget` (None or > 0) and `reserve` (>= 0, below it) fit."""
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be > 0 seconds. Received: {time_budget!r}.")
    if not reserve >= 0 or (time_budget is not None and reserve >= time_budget):
        raise ValueError(
            f"reserve must be >= 0 and less than time_budget. Received: reserve={reserve!r}, "
            f"time_budget={time_budget!r}."
        )


def budget_stop_reason(used: float, next_trial: float, reserve: float, budget: float) -> str | None:
    """Why no further trial may start under a time budget, or None when one fits.

    Args:
        used: Seconds of the budget used so far.
        next_trial: Estimated seconds of the next trial (the longest finished
            one; 0 before any has finished, when a trial starts if any time
            is left).
        reserve: Seconds kept free at the end.
        budget: The budget in seconds.
    """
    if used + next_trial + reserve <= budget and used + reserve < budget:
        return None
    return (
        f"the time budget would be exceeded: {used:.0f} s used of time_budget={budget:g} s, "
        f"the next trial needs about {next_trial:.0f} s and {reserve:g} s are reserved"
    )


def _scaled_learning_rate(optimizer: keras.optimizers.Optimizer, scale: float) -> dict:
    """The config of an optimizer like `optimizer` with `scale` times its learning rate.

    A learning-rate schedule is scaled through its config (its initial rate,
    warm-up target or piecewise values).
    """
    config = keras.optimizers.serialize(optimizer)
    rate = config["config"]["learning_rate"]
    if isinstance(rate, dict):
        inner = rate["config"]
        for key in ("initial_learning_rate", "warmup_target"):
            if inner.get(key) is not None:
                inner[key] = float(inner[key]) * scale
        if "values" in inner:
            inner["values"] = [float(v) * scale for v in inner["values"]]
    else:
        config["config"]["learning_rate"] = float(rate) * scale
    return config


def _latency_ms(model: keras.Model, repeats: int = 20) -> float:
    """Median milliseconds of one inference on a single example."""
    x = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    model(x, training=False)  # Warm-up (tracing).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x, training=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


class _Heartbeat:
    """While a worker trains, tells the chief every few seconds that it is alive."""

    def __init__(self, oracle: Any, trial_id: str, interval: float, enabled: bool):
        self.oracle, self.trial_id, self.interval = oracle, trial_id, interval
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.oracle.get_trial(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat must not kill training.
                pass

    def __enter__(self) -> _Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
