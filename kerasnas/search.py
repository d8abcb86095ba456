"""`kerasnas.Search`: the facade that runs a neural architecture search."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine.tuner import maybe_distribute

from kerasnas import data as data_module
from kerasnas._io import read_json, write_json
from kerasnas.architecture import Architecture
from kerasnas.morph import lineage
from kerasnas.objectives import (
    TRAINED_RESOURCES,
    ResourceConstrained,
    objective_inputs,
    pareto_front,
)
from kerasnas.oracles import STRATEGIES
from kerasnas.oracles.base import NasOracle
from kerasnas.recipe import Recipe
from kerasnas.spaces.base import SearchSpace
from kerasnas.tuner import INHERITED, PARAMS, TRAIN_TIME, NasTuner, check_time_budget

METADATA = "kerasnas.json"


class Search:
    """Searches a space of architectures for the best model of your data.

    ```python
    import kerasnas as kn
    (x, y), (x_val, y_val), _ = kn.data.load("digits")
    search = kn.Search(kn.spaces.NASNetSpace(), strategy="random",
                       objective="val_accuracy", max_trials=20, seed=0)
    search.fit(x, y, validation_data=(x_val, y_val), epochs=5)
    model = search.best_model()
    ```

    Trials are kept in keras-tuner's store under `directory/project_name`;
    with `overwrite=False` a new `Search` on the same project resumes it.

    Args:
        space: A `kerasnas.spaces.SearchSpace`. Its `input_shape` and
            `num_classes` may be left out: `fit` takes them from the data.
        strategy: A strategy name (one of `kerasnas.oracles.STRATEGIES`,
            e.g. `"random"`, `"evolution"`, `"controller"`, `"morphism"`) or
            an oracle instance built on the same space. Defaults to
            `"random"`.
        objective: The metric to optimise, e.g. `"val_accuracy"` (maximised)
            or `"val_loss"` (minimised), or a `keras_tuner.Objective`.
            Defaults to `"val_accuracy"`, or the oracle's objective.
        max_trials: Most trials to run. Defaults to 10, or the oracle's.
        directory: Where projects are stored. Defaults to `"kerasnas_runs"`.
        project_name: The project's folder name. Defaults to `"search"`.
        overwrite: Whether to delete an existing project of that name instead
            of resuming it. Defaults to False.
        distribution_strategy: A `tf.distribute.Strategy` under which each
            trial's model is built and trained (e.g. `MirroredStrategy`). A
            `MultiWorkerMirroredStrategy` spanning several workers is refused:
            Keras 3 cannot train with it (keras-team/keras#20585).
        seed: Integer seed for the strategy and each trial's initial weights.
        max_model_size: Trials whose model has more parameters fail at once.
        mixed_precision: Train in `mixed_float16` (for GPUs). Defaults to False.
        jit_compile: XLA-compile each model's training step. Defaults to False.
        time_budget: Wall-clock seconds the search may take (a resumed
            search counts its earlier trials' train time). No trial starts
            when the time used plus the longest finished trial's time plus
            `reserve` would exceed it; the progress line shows what is left.
            Defaults to None (no budget; `max_trials` still applies).
        reserve: Seconds of `time_budget` kept free, e.g. for training the
            final model after the search. Defaults to 0.
        recipe: A `kerasnas.Recipe`: how trials train (optimizer, learning
            rate schedule, weight decay, label smoothing, augmentation, and
            the default epochs and batch size of `fit`). None (the default)
            trains with the space's own compile (Adam at its learning rate)
            and no augmentation.
        evaluator: Optional stand-in for training, e.g. a
            `kerasnas.benchmarks.TabularBenchmark` on the same space: trials
            then look their metrics up, and `fit()` needs no data.
        verbose: 1 prints a line per trial and a final table; 0 is silent.
        **oracle_kwargs: Other arguments of the strategy's oracle (and of
            `keras_tuner.Oracle`, e.g. `max_consecutive_failed_trials`).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: str | keras_tuner.Oracle = "random",
        *,
        objective: str | keras_tuner.Objective | None = None,
        max_trials: int | None = None,
        directory: str | os.PathLike = "kerasnas_runs",
        project_name: str = "search",
        overwrite: bool = False,
        distribution_strategy: Any = None,
        seed: int | None = None,
        max_model_size: int | None = None,
        mixed_precision: bool = False,
        jit_compile: bool = False,
        time_budget: float | None = None,
        reserve: float = 0.0,
        recipe: Recipe | None = None,
        evaluator: Any = None,
        verbose: int = 1,
        **oracle_kwargs: Any,
    ):
        if not isinstance(space, SearchSpace):
            raise ValueError(
                "space must be a kerasnas.spaces.SearchSpace, e.g. "
                f"kerasnas.spaces.NASNetSpace(). Received: {space!r}."
            )
        self.space = space
        if isinstance(strategy, keras_tuner.Oracle):
            if oracle_kwargs:
                raise ValueError(
                    f"Oracle arguments {sorted(oracle_kwargs)} cannot be applied to "
                    "an oracle instance; pass them to the oracle instead."
                )
            self.oracle = _adopt_oracle(strategy, space, objective, max_trials)
            self.strategy = type(strategy).__name__
        elif isinstance(strategy, str):
            if strategy not in STRATEGIES:
                raise ValueError(
                    f"Unknown strategy {strategy!r}. Choose one of "
                    f"{sorted(STRATEGIES)}, or pass an oracle instance."
                )
            self.oracle = STRATEGIES[strategy](
                space,
                objective=objective or "val_accuracy",
                max_trials=10 if max_trials is None else max_trials,
                seed=seed,
                **oracle_kwargs,
            )
            self.strategy = strategy
        else:
            raise ValueError(
                f"strategy must be a strategy name or a keras_tuner.Oracle. Received: {strategy!r}."
            )
        if max_model_size is not None and max_model_size < 1:
            raise ValueError(f"max_model_size must be positive. Received: {max_model_size}.")
        self.directory = os.fspath(directory)
        self.project_name = project_name
        self.overwrite = overwrite
        _check_distribution_strategy(distribution_strategy)
        self.distribution_strategy = distribution_strategy
        self.seed = seed
        self.max_model_size = max_model_size
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        check_time_budget(time_budget, reserve)
        self.time_budget = time_budget
        self.reserve = reserve
        if recipe is not None and not isinstance(recipe, Recipe):
            raise ValueError(f"recipe must be a kerasnas.Recipe. Received: {recipe!r}.")
        self.recipe = recipe
        if evaluator is not None and getattr(evaluator, "space", space) is not space:
            raise ValueError(
                "The evaluator was built on another space object than the one given to "
                "Search; build both on the same space."
            )
        self.evaluator = evaluator
        self.verbose = verbose
        self._tuner: NasTuner | None = None
        self._retrained: keras.Model | None = None

    @property
    def project_dir(self) -> str:
        return os.path.join(self.directory, self.project_name)

    @property
    def objective(self) -> keras_tuner.Objective:
        return self.oracle.objective

    # -- Running ------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        *,
        validation_data: Any = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
        verbose: int = 0,
        **fit_kwargs: Any,
    ) -> Search:
        """Runs trials until `max_trials` are done or the strategy stops.

        Args:
            x: Training examples (numpy array) or a batched `tf.data.Dataset`
                of `(examples, labels)`.
            y: Labels when `x` is an array: class indices or one-hot rows.
            validation_data: `(x_val, y_val)` or a batched dataset; needed for
                `val_*` objectives.
            epochs: Training epochs per trial. Defaults to the recipe's, or
                5 without one.
            batch_size: Batch size for array data (the global batch under a
                distribution strategy). Defaults to the recipe's, or 32.
            callbacks: Keras callbacks for every trial's `fit` (deep-copied).
            verbose: Verbosity of each trial's `model.fit`. Defaults to 0.
            **fit_kwargs: Other `model.fit` arguments.

        Returns:
            The `Search`, for chaining.
        """
        if self.evaluator is not None:
            if x is not None or y is not None or validation_data is not None:
                raise ValueError(
                    "This search looks trials up in its evaluator; fit() takes no data."
                )
            self._check_objective(list(self.evaluator.metric_names))
            self._run_search()
            return self
        recipe, epochs, batch_size = _resolve_recipe(self.recipe, epochs, batch_size, 5, 32)
        train = data_module.examine(x, y, read_labels=self.space.num_classes is None)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                if len(validation_data) != 2:
                    raise ValueError(
                        "validation_data must be (x_val, y_val) or a tf.data.Dataset. "
                        f"Received a sequence of {len(validation_data)} items."
                    )
                val = data_module.examine(*validation_data, what="validation data")
            else:
                val = data_module.examine(
                    validation_data,
                    what="validation data",
                    read_labels=self.space.num_classes is None,
                )
            if val.input_shape != train.input_shape:
                raise ValueError(
                    f"Validation examples have shape {val.input_shape} but training "
                    f"examples have shape {train.input_shape}."
                )
        prepare = getattr(self.oracle, "prepare", None)
        if prepare is not None and val is None:
            raise ValueError(
                f"The {self.strategy!r} strategy ranks architectures by their accuracy "
                "on validation data (one-shot search); pass validation_data=(x_val, y_val)."
            )
        seen = [e.num_labels for e in (train, val) if e is not None and e.num_labels]
        self.space.configure(
            input_shape=train.input_shape,
            num_classes=self.space.num_classes or max(seen),
        )
        for examined, what in ((train, "training data"), (val, "validation data")):
            if examined is not None:
                data_module.check_labels_fit(examined, self.space.num_classes, what)
        produced = ["loss", *self.space.metrics]
        if val is not None:
            produced += [f"val_{name}" for name in produced]
        self._check_objective([*produced, *TRAINED_RESOURCES], has_validation=val is not None)

        kwargs: dict[str, Any] = dict(fit_kwargs)
        kwargs.update(epochs=epochs, callbacks=list(callbacks or []), verbose=verbose)
        # Arrays become tf.data pipelines held in memory and prefetched; every trial
        # reshuffles the training set each epoch.
        if val is not None:
            kwargs["validation_data"] = (
                val.x if val.is_dataset else data_module.to_dataset(val.x, val.y, batch_size)
            )
        seed = 0 if self.seed is None else self.seed
        if train.is_dataset:
            x = train.x
        else:
            x = data_module.to_dataset(train.x, train.y, batch_size, shuffle=True, seed=seed)
        # Keras ignores `shuffle` for datasets (with a warning); array pipelines reshuffle.
        kwargs.setdefault("shuffle", False)
        tuner = self._get_tuner()
        if prepare is not None and not _is_worker():
            # One-shot search: the supernet ranks the candidates the trials train.
            prepare(
                x,
                kwargs["validation_data"],
                directory=self.project_dir,
                distribution_strategy=self.distribution_strategy,
                progress=bool(self.verbose),
            )
        tuner.recipe = recipe
        if recipe is not None:
            tuner.steps_per_epoch = recipe.steps_in(x)
            x = recipe.augment(x, seed=seed)
        self._run_search(x, **kwargs)
        return self

    def _run_search(self, *args: Any, **kwargs: Any) -> None:
        tuner = self._get_tuner()
        if self.verbose:
            done = len(self.completed_trials())
            print(
                f"[kerasnas] {self.strategy} search, objective {self.objective.name}, "
                f"max_trials={self.oracle.max_trials}"
                + (f", resuming with {done} completed" if done else "")
                + f"; project {self.project_dir}",
                flush=True,
            )
        tuner.search(*args, **kwargs)
        if self.verbose and not _is_worker():
            self.summary()

    def _check_objective(self, produced: list[str], has_validation: bool = True) -> None:
        for name in objective_inputs(self.objective):
            if name not in produced:
                hint = (
                    " Metrics starting with 'val_' need validation_data."
                    if name.startswith("val_") and not has_validation
                    else ""
                )
                raise ValueError(
                    f"The objective {name!r} is not a metric the models produce; "
                    f"choose one of {produced}.{hint}"
                )

    def _get_tuner(self) -> NasTuner:
        if self._tuner is not None:
            return self._tuner
        metadata_path = os.path.join(self.project_dir, METADATA)
        stored = None
        worker = _is_worker()
        if worker and not self.space.is_configured and self.evaluator is None:
            raise ValueError("A worker needs a configured space: call fit() with the data.")
        if not self.overwrite and not worker and os.path.exists(metadata_path):
            stored = read_json(metadata_path)
            stored_space = stored["space"]
            if not self.space.is_configured:
                self.space.configure(stored_space["input_shape"], stored_space["num_classes"])
            if stored_space != self.space.get_config():
                raise ValueError(
                    f"The project {self.project_dir} was searched with another space:\n"
                    f"  stored: {stored_space}\n  now:    {self.space.get_config()}\n"
                    "Use the same space to resume, or pass overwrite=True or another "
                    "project_name to start afresh."
                )
        if not self.space.is_configured and self.evaluator is None:
            raise ValueError(
                "The space does not know its input_shape and num_classes and no "
                f"search is stored in {self.project_dir}; call fit() first."
            )
        self._tuner = NasTuner(
            self.oracle,
            self.space,
            seed=self.seed,
            progress=bool(self.verbose),
            directory=self.directory,
            project_name=self.project_name,
            # A worker must never delete the project that the chief is writing.
            overwrite=self.overwrite and not worker,
            distribution_strategy=self.distribution_strategy,
            max_model_size=self.max_model_size,
            evaluator=self.evaluator,
            mixed_precision=self.mixed_precision,
            jit_compile=self.jit_compile,
            time_budget=self.time_budget,
            reserve=self.reserve,
        )
        if stored is None and not worker:
            write_json(
                metadata_path,
                {
                    "space": self.space.get_config(),
                    "strategy": self.strategy,
                    "objective": self.objective.name,
                },
                indent=2,
            )
        return self._tuner

    # -- Results ------------------------------------------------------------
    def time_left(self) -> float | None:
        """Seconds of `time_budget` not used yet, e.g. for `retrain(time_budget=...)`.

        The budget less what the search has used: the wall time since `fit()`
        began plus earlier runs' trials when a project resumes; the whole
        budget before `fit()`. None without a `time_budget`.
        """
        if self.time_budget is None:
            return None
        if self._tuner is None:
            return float(self.time_budget)
        return max(0.0, self.time_budget - self._tuner.time_used())

    def completed_trials(self) -> list[trial_module.Trial]:
        return [
            t for t in self.oracle.trials.values() if t.status == trial_module.TrialStatus.COMPLETED
        ]

    def results(self) -> list[dict[str, Any]]:
        """One record per trial, in trial order.

        Each record has `trial_id`, `status` (keras-tuner's status name),
        `architecture` (JSON), `hash`, `score` (the objective), `metrics`
        (best-epoch value by metric name), `params`, `train_time` (seconds),
        `message` (the error of a failed trial, else None) and `morph`. For
        network-morphism trials `architecture` is the root architecture and
        `morph` the lineage: `{"parent": trial id, "ops": [op strings from the
        root], "inherited": whether training started from the parent's
        weights}` (`hash` covers the ops); else `morph` is None.
        """
        self._ensure_loaded()
        records = []
        for trial_id in sorted(self.oracle.trials):
            trial = self.oracle.trials[trial_id]
            values = trial.hyperparameters.values
            arch = self.space.decode(values)
            found = lineage.of(values)
            metrics = {
                name: float(trial.metrics.get_last_value(name)) for name in trial.metrics.metrics
            }
            records.append(
                {
                    "trial_id": trial.trial_id,
                    "status": trial.status,
                    "architecture": arch.to_json(),
                    "hash": lineage.key(arch, values),
                    "score": None if trial.score is None else float(trial.score),
                    "metrics": {
                        k: v for k, v in metrics.items() if k not in (PARAMS, TRAIN_TIME, INHERITED)
                    },
                    "params": _as_int(metrics.get(PARAMS)),
                    "train_time": metrics.get(TRAIN_TIME),
                    "message": trial.message,
                    "morph": None
                    if found is None or not found.ops
                    else {
                        "parent": found.parent,
                        "ops": list(found.ops),
                        "inherited": None if INHERITED not in metrics else bool(metrics[INHERITED]),
                    },
                }
            )
        return records

    def best_trials(self, k: int = 1) -> list[trial_module.Trial]:
        """The k best completed trials, best first."""
        self._ensure_loaded()
        best = [
            t
            for t in self.oracle.get_best_trials(k)
            if t.status == trial_module.TrialStatus.COMPLETED
        ]
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
        for trial in best:
            if lineage.grown(trial.hyperparameters.values):
                raise ValueError(
                    f"Trial {trial.trial_id} trained a network grown by morphism ops, which "
                    "no architecture of the space describes. Use best_model() for the "
                    "model, or results() for its root architecture and ops."
                )
        return [self.space.decode(t.hyperparameters.values) for t in best]

    def best_model(self) -> keras.Model:
        """The best trial's trained model (weights of its best epoch)."""
        trial = self.best_trials(1)[0]
        return self._get_tuner().load_model(trial)

    def retrain(
        self,
        x: Any,
        y: Any = None,
        validation_data: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        top_k: int = 1,
        recipe: Recipe | None = None,
        time_budget: float | None = None,
    ) -> keras.Model:
        """Trains the best network again from scratch, for the final model.

        With `top_k=1` the best trial's network is trained on `x, y` plus
        `validation_data` when given (train + validation: nothing is held out
        any more). With `top_k > 1` each of the k best trials' networks is
        trained on `x, y` and scored on `validation_data` (required) by the
        objective's metric, and the best is kept. Networks are built the way
        their trials were (grown morphism networks included), with fresh
        weights, and trained with `recipe` (the final recipe: typically
        longer than the trials', with augmentation); `export()` afterwards
        saves the retrained model.

        Args:
            x: Training examples (array) or a batched `tf.data.Dataset`.
            y: Labels when `x` is an array.
            validation_data: `(x_val, y_val)` or a batched dataset.
            epochs: Training epochs (typically more than a trial's).
                Defaults to the recipe's; required without a recipe.
            batch_size: Batch size for array data. Defaults to the recipe's,
                or 32.
            top_k: How many of the best trials to retrain. Defaults to 1.
            recipe: The `kerasnas.Recipe` of the final training. Defaults to
                the search's recipe (with `epochs` when given); without
                either, models train with the space's compile.
            time_budget: Seconds the retraining may take (split evenly among
                the `top_k` networks), instead of `epochs`: each network's
                speed is measured on a few steps of a throwaway copy (the
                same data pipeline, batch size and compile), and it trains
                for as many epochs as fit, at least one (a learning-rate
                schedule then spans those epochs); after each epoch the
                epochs left are re-planned from the epochs' own times
                (`fit_within`), so the training ends within the budget even
                when whole epochs run slower than the steps measured. E.g.
                what a `Search(time_budget=..., reserve=...)` reserved.

        Returns:
            The retrained model.
        """
        if recipe is not None and not isinstance(recipe, Recipe):
            raise ValueError(f"recipe must be a kerasnas.Recipe. Received: {recipe!r}.")
        if time_budget is not None:
            if isinstance(time_budget, bool) or not (
                isinstance(time_budget, (int, float)) and time_budget > 0
            ):
                raise ValueError(
                    f"time_budget must be a number of seconds > 0. Received: {time_budget!r}."
                )
            if epochs is not None:
                raise ValueError("Pass epochs or time_budget to retrain(), not both.")
            epochs = 1  # A placeholder: each network's epochs come from its measured speed.
        started = time.perf_counter()
        recipe, epochs, batch_size = _resolve_recipe(
            recipe or self.recipe, epochs, batch_size, None, 32
        )
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1. Received: top_k={top_k!r}.")
        if top_k > 1 and validation_data is None:
            raise ValueError(
                f"top_k={top_k} keeps the best network on validation data: pass validation_data."
            )
        trials = self.best_trials(top_k)
        train = data_module.examine(x, y)
        val = None
        if validation_data is not None:
            pair = isinstance(validation_data, (tuple, list))
            val = data_module.examine(
                *(validation_data if pair else (validation_data,)), what="validation data"
            )
        for examined, what in ((train, "training data"), (val, "validation data")):
            if examined is None:
                continue
            if examined.input_shape != tuple(self.space.input_shape):
                raise ValueError(
                    f"The {what} has examples of shape {examined.input_shape}, but the "
                    f"searched networks take {tuple(self.space.input_shape)}."
                )
            data_module.check_labels_fit(examined, self.space.num_classes, what)

        def dataset(examined: Any, shuffle: bool) -> Any:
            if examined.is_dataset:
                return examined.x
            seed = 0 if self.seed is None else self.seed
            return data_module.to_dataset(
                examined.x, examined.y, batch_size, shuffle=shuffle, seed=seed
            )

        if top_k == 1 and val is not None:
            if train.is_dataset != val.is_dataset:
                raise ValueError(
                    "Pass training and validation data alike (both arrays or both datasets)."
                )
            if train.is_dataset:
                train_data = train.x.concatenate(val.x)
            else:
                both = data_module.examine(
                    np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y])
                )
                train_data = dataset(both, shuffle=True)
        else:
            train_data = dataset(train, shuffle=True)
        steps = 1
        # Batches per epoch, for the epochs that fit in the time budget.
        epoch_steps = steps_per_epoch(train_data) if time_budget is not None else 0
        if recipe is not None:
            steps = recipe.steps_in(train_data)
            train_data = recipe.augment(train_data, seed=0 if self.seed is None else self.seed)
        metric = self.objective.name.removeprefix("val_")
        better = max if self.objective.direction == "max" else min
        tuner = self._get_tuner()
        best: tuple[float, keras.Model] | None = None
        for i, trial in enumerate(trials):
            note = ""
            if time_budget is not None:
                # This network's share: what is left of the budget over the networks left.
                share = (time_budget - (time.perf_counter() - started)) / (len(trials) - i)
                began = time.perf_counter()
                probe = tuner._try_build(trial.hyperparameters)
                if recipe is not None:
                    with maybe_distribute(self.distribution_strategy):
                        recipe.compile(probe, steps, self.space.metrics)
                step_s, first_s = measure_step_seconds(probe, train_data)
                del probe
                epochs = epochs_within(
                    share - (time.perf_counter() - began), step_s, epoch_steps, first_s
                )
                note = f" (time_budget: {share:.0f} s, {step_s * 1000:.0f} ms a step)"
            if self.seed is not None:
                keras.utils.set_random_seed(self.seed * 100_003 + int(trial.trial_id))
            model = tuner._try_build(trial.hyperparameters)
            if recipe is not None:
                with maybe_distribute(self.distribution_strategy):
                    recipe.replace(epochs=epochs).compile(model, steps, self.space.metrics)
            if self.verbose:
                print(
                    f"[kerasnas] retraining trial {trial.trial_id} ({model.count_params():,} "
                    f"params) for {epochs} epochs{note}",
                    flush=True,
                )
            callbacks = [_EpochProgress(epochs)] if self.verbose else []
            # The pipeline shuffles (and augments) every epoch.
            if time_budget is None:
                model.fit(train_data, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
            else:
                schedule = None
                if recipe is not None and recipe.schedule != "constant":
                    schedule = functools.partial(recipe.learning_rate_schedule, steps)
                fit_within(model, train_data, epochs, began + share, schedule, callbacks)
            if top_k == 1:
                best = (0.0, model)
                break
            scores = model.evaluate(dataset(val, shuffle=False), verbose=0, return_dict=True)
            if metric not in scores:
                raise ValueError(
                    f"top_k > 1 scores networks by the objective's metric {metric!r}, which "
                    f"evaluate() does not give (it gives {sorted(scores)}); use top_k=1."
                )
            if self.verbose:
                print(f"[kerasnas]   validation {metric}={scores[metric]:.4f}", flush=True)
            if best is None or better(scores[metric], best[0]) != best[0]:
                best = (scores[metric], model)
        self._retrained = best[1]
        return self._retrained

    def export(self, path: str | os.PathLike) -> str | None:
        """Saves the best model to a `.keras` file, loadable with `keras.models.load_model`.

        After `retrain()`, the retrained model is saved; else the best trial's.

        Under a multi-worker strategy every replica must call it (the model's
        variables are created collectively) and only the cluster's chief
        writes; the others get None.
        """
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise ValueError(
                f"export() writes the Keras format; the path must end in '.keras'. "
                f"Received: {path!r}."
            )
        model = self._retrained if self._retrained is not None else self.best_model()
        if model.optimizer is not None and not model.optimizer.built:
            # Save a complete optimizer, so that loading does not warn about it; its
            # slots must be created in the strategy's scope.
            with maybe_distribute(self.distribution_strategy):
                model.optimizer.build(model.trainable_variables)
        strategy = self.distribution_strategy
        if strategy is not None and not strategy.extended.should_checkpoint:
            return None
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        model.save(path)
        return path

    def pareto_front(self) -> list[dict[str, Any]]:
        """The completed trials that no other trial beats on both objectives.

        With a `kerasnas.objectives.ResourceConstrained` objective the two
        objectives are its metric (maximised) and its resource (minimised);
        otherwise they are the objective and the parameter count. Returns
        `results()` records, fewest resources first.
        """
        objective = self.objective
        if isinstance(objective, ResourceConstrained):
            axes = [(objective.metric, "max"), (objective.resource, "min")]
        else:
            axes = [(objective.name, objective.direction), (PARAMS, "min")]
        flat = []
        for r in self.results():
            if r["status"] == trial_module.TrialStatus.COMPLETED:
                flat.append({**r["metrics"], PARAMS: r["params"], "record": r})
        front = pareto_front(flat, axes)
        front.sort(key=lambda f: f[axes[1][0]])
        return [f["record"] for f in front]

    def plot_history(self, path: str | os.PathLike = "history.png") -> str:
        """Plots each trial's score and the best so far to an image file."""
        from kerasnas import _plot

        records = self.results()
        if not any(r["status"] == trial_module.TrialStatus.COMPLETED for r in records):
            raise ValueError(f"No trial has completed in {self.project_dir}; nothing to plot.")
        return _plot.plot_history(
            records, self.objective.name, self.objective.direction, os.fspath(path)
        )

    def plot_pareto(self, path: str | os.PathLike = "pareto.png") -> str:
        """Plots every completed trial and the Pareto front (see `pareto_front`)."""
        from kerasnas import _plot

        objective = self.objective
        metric, resource = (
            (objective.metric, objective.resource)
            if isinstance(objective, ResourceConstrained)
            else (objective.name, PARAMS)
        )

        def point(r):
            values = {**r["metrics"], PARAMS: r["params"]}
            return (values[resource], values[metric])

        done = [r for r in self.results() if r["status"] == trial_module.TrialStatus.COMPLETED]
        if not done:
            raise ValueError(f"No trial has completed in {self.project_dir}; nothing to plot.")
        return _plot.plot_pareto(
            [point(r) for r in done],
            [point(r) for r in self.pareto_front()],
            resource,
            metric,
            os.fspath(path),
        )

    def summary(self, k: int = 10) -> None:
        """Prints a table of the k best completed trials."""
        records = [r for r in self.results() if r["status"] == trial_module.TrialStatus.COMPLETED]
        failed = sum(r["status"] == trial_module.TrialStatus.FAILED for r in self.results())
        reverse = self.objective.direction == "max"
        records.sort(key=lambda r: r["score"], reverse=reverse)
        name = self.objective.name
        print(
            f"\n[kerasnas] {len(records)} completed, {failed} failed trials in "
            f"{self.project_dir}; best {min(k, len(records))} by {name}:"
        )
        print(f"{'rank':>4}  {'trial':>5}  {'arch':8}  {name:>12}  {'params':>10}  {'time(s)':>8}")
        for rank, r in enumerate(records[:k], 1):
            print(
                f"{rank:>4}  {r['trial_id']:>5}  {r['hash'][:8]}  {r['score']:>12.4f}  "
                f"{r['params'] or 0:>10,}  {r['train_time'] or 0:>8.1f}"
            )

    def _ensure_loaded(self) -> None:
        """Reads a stored project when this `Search` has not run one."""
        if self._tuner is None and os.path.exists(os.path.join(self.project_dir, METADATA)):
            self._get_tuner()


def _adopt_oracle(oracle, space, objective, max_trials) -> keras_tuner.Oracle:
    if isinstance(oracle, NasOracle) and oracle.space is not space:
        raise ValueError(
            "The oracle was built on another space object than the one given to "
            "Search; build it on the same space."
        )
    if objective is not None and getattr(objective, "name", objective) != oracle.objective.name:
        raise ValueError(
            f"objective={objective!r} differs from the oracle's objective "
            f"{oracle.objective.name!r}; set it on the oracle only."
        )
    if max_trials is not None and max_trials != oracle.max_trials:
        raise ValueError(
            f"max_trials={max_trials} differs from the oracle's max_trials="
            f"{oracle.max_trials}; set it on the oracle only."
        )
    return oracle


def _check_distribution_strategy(strategy: Any) -> None:
    """Refuses strategies that Keras 3 cannot train with."""
    extended = getattr(strategy, "extended", None)
    in_multi_worker_mode = getattr(extended, "_in_multi_worker_mode", None)
    if in_multi_worker_mode is not None and in_multi_worker_mode():
        raise ValueError(
            "Keras 3 cannot train a model under a MultiWorkerMirroredStrategy that spans "
            "several workers: model.fit fails on the strategy's per-replica values "
            "(keras-team/keras#20585; checked with TensorFlow 2.21 and Keras 3.15). Use "
            "MirroredStrategy on each machine for data parallelism within a trial, and "
            "keras-tuner's chief/worker mode (kerasnas.distributed, --role) to run trials "
            "on several machines."
        )


def _resolve_recipe(
    recipe: Recipe | None,
    epochs: int | None,
    batch_size: int | None,
    default_epochs: int | None,
    default_batch_size: int,
) -> tuple[Recipe | None, int, int]:
    """The recipe, epochs and batch size of a training: explicit values win over the recipe's."""
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an integer >= 1. Received: epochs={epochs!r}.")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(
            f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}."
        )
    if recipe is None:
        if epochs is None and default_epochs is None:
            raise ValueError("Give the number of epochs, or a recipe=kerasnas.Recipe(epochs=...).")
        return None, epochs or default_epochs, batch_size or default_batch_size
    changes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    recipe = recipe.replace(**changes) if changes else recipe
    return recipe, recipe.epochs, recipe.batch_size


class _StepTimes(keras.callbacks.Callback):
    """Records when each training step ends."""

    def __init__(self) -> None:
        super().__init__()
        self.begin = 0.0
        self.ends: list[float] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())


def measure_step_seconds(model: keras.Model, dataset: Any, steps: int = 20) -> tuple[float, float]:
    """Seconds per training step of a compiled `model` on a batched `dataset`, and of its first.

    Trains `model` (a throwaway: its weights change) on `steps` + 5 batches
    (the dataset repeated when it has fewer); the first step (tracing) and
    the next 4 (warming up) are left out of the per-step figure.
    """
    timer = _StepTimes()
    model.fit(dataset.repeat().take(steps + 5), epochs=1, verbose=0, shuffle=False,
              callbacks=[timer])  # fmt: skip
    ends = timer.ends
    first = ends[0] - timer.begin
    return (ends[-1] - ends[5]) / (len(ends) - 6), first


def steps_per_epoch(dataset: Any) -> int:
    """Batches in one pass over a batched dataset (counted when its length is unknown)."""
    n = int(dataset.cardinality())
    if n >= 0:
        return n
    return sum(1 for _ in dataset)


def epochs_within(seconds: float, step_seconds: float, steps: int, first_step: float) -> int:
    """Epochs of `steps` steps that fit in `seconds` (10 % margin, plus the first step's
    tracing once), at least 1.

    The margin covers what a few measured steps miss: on a busy CPU whole
    epochs ran about 7 % slower than 25 measured steps of a 60,000-image
    Fashion-MNIST training (shuffling and augmentation work that the
    pipeline had prefetched while the first step traced)."""
    per_epoch = step_seconds * steps * 1.10
    return max(1, int((seconds - first_step) // per_epoch))


class _Pacer(keras.callbacks.Callback):
    """Keeps a training's epochs within a deadline, re-planning them as it goes.

    After each epoch it projects, from the last few epochs' times, how many
    epochs fit before `deadline` (2 % margin, and the retracing a re-plan
    costs); when that is fewer than planned (then cut with a 5 % margin), or
    at least 2 (and 5 %) more,
    it ends this `fit()` with the new count in `replan` for `fit_within` to
    carry on with (it grows the plan only in its first quarter, while a
    re-laid schedule's learning rate is still near its peak). The first
    epoch of each `fit()` also traces the training step: its first step's
    extra time (over the epoch's other steps) is left out of its time and
    counted, with the pause between the two `fit()` calls, as what a re-plan
    costs. Within an epoch after the first it stops training once the
    deadline has passed: a last resort, as the epochs are planned to end
    before it.
    """

    def __init__(self, deadline: float, epochs: int, clock: Callable[[], float]):
        super().__init__()
        self.deadline, self.epochs, self.clock = deadline, epochs, clock
        self.done = 0  # Epochs completed.
        self.replan: int | None = None
        self.overran = False
        self.times: list[float] = []  # Each epoch's seconds, tracing left out.
        self.replan_cost = 0.0  # Seconds: the pause between two fit() calls and retracing.
        self._epoch_began = self._step_began = self._epoch_ended = 0.0
        self._pause = 0.0
        self._steps: list[float] = []
        self._first_of_fit = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.replan, self._first_of_fit = None, True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_began, self._steps = self.clock(), []
        if self._first_of_fit and self._epoch_ended:
            self._pause = self._epoch_began - self._epoch_ended

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._step_began = self.clock()
        if self._step_began > self.deadline and self.done:  # The first epoch is always whole.
            self.overran = self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps.append(self.clock() - self._step_began)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = self.clock()
        took = now - self._epoch_began
        if self._first_of_fit and len(self._steps) > 1:
            steps = self._steps
            tracing = max(0.0, steps[0] - sum(steps[1:]) / (len(steps) - 1))
            took -= tracing
            # Until a re-plan has been timed, its pause is guessed as long as the tracing.
            pause = self._pause if self._pause else tracing
            self.replan_cost = max(self.replan_cost, tracing + pause)
        self._first_of_fit, self._epoch_ended = False, now
        self.times.append(took)
        self.done = epoch + 1
        left = self.deadline - now
        per_epoch = max(self.times[-3:])
        # Kept as it is, the plan costs no re-plan; a new plan costs one.
        keep = self.done + int(left // (1.02 * per_epoch))
        fit = self.done + int((left - self.replan_cost) // (1.02 * per_epoch))
        # Growing re-lays the schedule: only early, while the learning rate is near its peak.
        grow = fit >= max(self.epochs + 2, 1.05 * self.epochs) and self.done <= self.epochs // 4
        if self.overran or not (self.done < self.epochs and keep < self.epochs or grow):
            return
        if keep < self.epochs:  # Cut with a wider margin: one re-plan should do.
            fit = self.done + int((left - self.replan_cost) // (1.05 * per_epoch))
        self.replan = max(fit, self.done)
        self.model.stop_training = True


def fit_within(
    model: keras.Model,
    dataset: Any,
    epochs: int,
    deadline: float,
    schedule: Callable[[int], Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Trains a compiled `model` on `dataset` for about `epochs` epochs, ending by `deadline`.

    `epochs` is the plan made from a measured step time (`epochs_within`);
    whole epochs can run slower or faster than the few steps measured, so
    after each epoch the epochs left are re-planned from the epochs' times
    to end by `deadline` (a `clock()` value: `time.perf_counter()` unless
    a test passes its own clock). On a re-plan
    `schedule(epochs)`, when given, is the learning rate (schedule) for the
    new count, and the training step is traced again with it; the progress
    line, when among `callbacks`, shows the new count. The first epoch is
    always trained whole. Returns the epochs trained; a last epoch cut short
    at the deadline counts.

    ```python
    from kerasnas.search import epochs_within, fit_within, measure_step_seconds, steps_per_epoch

    deadline = time.perf_counter() + 1800  # Half an hour from now.
    step_s, first_s = measure_step_seconds(make_model(), dataset)  # A throwaway copy.
    epochs = epochs_within(1800, step_s, steps_per_epoch(dataset), first_s)
    model = make_model()  # Compiled with a constant learning rate.
    trained = fit_within(model, dataset, epochs, deadline)
    ```
    """
    pacer = _Pacer(deadline, epochs, clock)
    while True:
        model.fit(dataset, initial_epoch=pacer.done, epochs=epochs, verbose=0, shuffle=False,
                  callbacks=[*callbacks, pacer])  # fmt: skip
        if pacer.overran:
            print(
                f"[kerasnas]   the time budget is spent: training stopped in epoch "
                f"{pacer.done}/{epochs}",
                flush=True,
            )
            return pacer.done
        if pacer.replan is None:
            return pacer.done
        if pacer.replan <= pacer.done:
            print(
                f"[kerasnas]   no further epoch fits the time left: training stopped after "
                f"epoch {pacer.done}/{epochs}",
                flush=True,
            )
            return pacer.done
        print(
            f"[kerasnas]   re-planned: {pacer.replan} epochs instead of {epochs} fit the time "
            f"left (an epoch takes about {pacer.times[-1]:.1f} s)",
            flush=True,
        )
        epochs = pacer.epochs = pacer.replan
        for callback in callbacks:
            if isinstance(callback, _EpochProgress):
                callback.epochs = epochs
        if schedule is not None:
            model.optimizer.learning_rate = schedule(epochs)
            model.train_function = None  # Traced again, with the new schedule.


class _EpochProgress(keras.callbacks.Callback):
    """Prints a line per epoch of a long training (the final retraining)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self._start:  # Once: `fit_within` may resume training with another fit().
            self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
        print(
            f"[kerasnas]   epoch {epoch + 1}/{self.epochs} {shown} "
            f"elapsed={time.perf_counter() - self._start:.0f}s",
            flush=True,
        )


def _is_worker() -> bool:
    """Whether this process is a worker of keras-tuner's chief/worker mode."""
    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)
