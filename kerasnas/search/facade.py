"""`kerasnas.Search`: the facade that runs a neural architecture search.

It wires the parts together and holds none of their logic: the strategy
(`kerasnas.oracles`), the project folder (`search.project`), the checked
inputs (`training.inputs`), the trial runner (`training.runner`), the
results (`search.results`) and the final training (`search.retrain`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import keras_tuner

from kerasnas import distributed, report
from kerasnas.objectives import TRAINED_RESOURCES
from kerasnas.oracles.base import NasOracle
from kerasnas.recipe import Recipe
from kerasnas.search import options
from kerasnas.search.project import Project
from kerasnas.search.results import SearchResults
from kerasnas.search.retrain import FinalModel
from kerasnas.spaces.base import SearchSpace
from kerasnas.training import inputs as inputs_module
from kerasnas.training.budget import check_time_budget
from kerasnas.training.runner import NasTuner


class Search(SearchResults, FinalModel):
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
            search counts its earlier trials' train time). A trial starts when
            the time used, its first epoch (as long as this run's first epochs
            took, or else the longest finished trial) and `reserve` fit in it;
            a running trial is stopped at the deadline and scored by its best
            epoch so far. The progress line shows what is left.
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
        self.oracle, self.strategy = options.make_oracle(
            space, strategy, objective, max_trials, seed, oracle_kwargs
        )
        if max_model_size is not None and max_model_size < 1:
            raise ValueError(f"max_model_size must be positive. Received: {max_model_size}.")
        self.directory = os.fspath(directory)
        self.project_name = project_name
        self.project = Project(self.directory, project_name)
        self.overwrite = overwrite
        options.check_distribution_strategy(distribution_strategy)
        self.distribution_strategy = distribution_strategy
        self.seed = seed
        self.max_model_size = max_model_size
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        check_time_budget(time_budget, reserve)
        self.time_budget = time_budget
        self.reserve = reserve
        options.check_recipe(recipe)
        self.recipe = recipe
        options.check_evaluator(evaluator, space, self.oracle)
        self.evaluator = evaluator
        self.verbose = verbose
        self._tuner: NasTuner | None = None
        self._overwritten = False
        self._retrained: keras.Model | None = None

    @property
    def project_dir(self) -> str:
        return self.project.path

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
            **fit_kwargs: `validation_split` (arrays only), and `model.fit`'s
                `class_weight`, `steps_per_epoch`, `validation_steps`, `validation_freq`.

        Returns:
            The `Search`, for chaining.
        """
        started = time.perf_counter()  # The time budget counts from here.
        with report.quiet(not self.verbose):
            split, fit_kwargs = options.check_fit_arguments(fit_kwargs)
            if self.evaluator is not None:
                if split or any(data is not None for data in (x, y, validation_data)):
                    raise ValueError(
                        "This search looks trials up in its evaluator; fit() takes no data."
                    )
                options.check_objective(self.objective, list(self.evaluator.metric_names))
                with self._writing() as tuner:
                    self._run_search(tuner)
                return self
            recipe, epochs, batch_size = options.resolve_recipe(
                self.recipe, epochs, batch_size, 5, 32
            )
            inputs = inputs_module.examine_inputs(
                x, y, validation_data, read_labels=self.space.num_classes is None,
                validation_split=split,
            )  # fmt: skip
            has_validation = inputs.validation is not None
            if getattr(self.oracle, "needs_validation_data", False) and not has_validation:
                raise ValueError(
                    f"The {self.strategy!r} strategy ranks architectures by their accuracy "
                    "on validation data (one-shot search); pass validation_data=(x_val, y_val)."
                )
            inputs_module.configure_space(self.space, inputs)
            inputs_module.check_fits_space(self.space, inputs)
            produced = ["loss", *self.space.metrics]
            if has_validation:
                produced += [f"val_{name}" for name in produced]
            options.check_objective(self.objective, [*produced, *TRAINED_RESOURCES], has_validation)
            seed = 0 if self.seed is None else self.seed
            x, val = inputs.datasets(batch_size, seed)
            kwargs: dict[str, Any] = dict(fit_kwargs, epochs=epochs, verbose=verbose)
            kwargs["started"] = started
            kwargs.update(callbacks=list(callbacks or []), shuffle=False)  # Pipelines shuffle.
            if val is not None:
                kwargs["validation_data"] = val
            if recipe is not None:
                steps = recipe.steps_in(x)
                x = recipe.augment(x, seed=seed)
            if recipe is not None:
                kwargs.update(recipe=recipe, steps_per_epoch=steps)
            training = {
                "epochs": epochs,
                "batch_size": batch_size,
                "recipe": None if recipe is None else recipe.to_config(),
            }
            with self._writing() as tuner:
                if not distributed.is_worker():
                    self.project.check_training(training)
                self._run_search(tuner, x, **kwargs)
        return self

    @contextlib.contextmanager
    def _writing(self) -> Iterator[NasTuner]:
        """The runner, with the project's lock held (except on a worker) while it writes.

        With `overwrite=True` the project's old trials are deleted once the lock
        is held (never those of a search that holds it).
        """
        if distributed.is_worker():
            yield self._get_tuner()
            return
        with self.project.lock():
            if self.overwrite and not self._overwritten:
                self.project.clear()
                self._tuner, self._overwritten = None, True
            yield self._get_tuner()

    def _run_search(self, tuner: NasTuner, *args: Any, **kwargs: Any) -> None:
        done = len(self.completed_trials())
        report.logger.info(
            "%s search, objective %s, max_trials=%d%s; project %s",
            self.strategy,
            self.objective.name,
            self.oracle.max_trials,
            f", resuming with {done} completed" if done else "",
            self.project_dir,
        )
        try:
            tuner.search(*args, **kwargs)
        finally:  # Also when too many trials failed in a row (keras-tuner's RuntimeError).
            if not distributed.is_worker():
                self.summary()

    def _get_tuner(self) -> NasTuner:
        if self._tuner is not None:
            return self._tuner
        worker = distributed.is_worker()
        if worker and not self.space.is_configured and self.evaluator is None:
            raise ValueError("A worker needs a configured space: call fit() with the data.")
        self.project.check_directory()
        resuming = not worker and self.project.exists()
        if resuming:
            self.project.check_resume(self.space, self._record())
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
            overwrite=False,  # `_writing` clears the project, under its lock.
            distribution_strategy=self.distribution_strategy,
            max_model_size=self.max_model_size,
            evaluator=self.evaluator,
            mixed_precision=self.mixed_precision,
            jit_compile=self.jit_compile,
            time_budget=self.time_budget,
            reserve=self.reserve,
            recipe=self.recipe,
        )
        if not resuming and not worker:
            self.project.write({**self._record(), "space": self.space.get_config()})
        return self._tuner

    def _record(self) -> dict[str, Any]:
        """What makes this search's trials comparable (the project's metadata, but the space)."""
        settings = self.oracle.trial_settings() if isinstance(self.oracle, NasOracle) else {}
        return {
            "strategy": self.strategy,
            "strategy_settings": settings,
            "objective": self.objective.name,
            "direction": getattr(self.objective, "direction", None),
        }

    # -- Results ------------------------------------------------------------
    def time_left(self) -> float | None:
        """Seconds of `time_budget` not used yet, e.g. for `retrain(time_budget=...)`.

        The budget less what the search has used: the wall time since `fit()`
        began plus earlier runs' trials (and a strategy's preparation, such as
        a one-shot supernet's training) when a project resumes; the whole
        budget before `fit()`. None without a `time_budget`.
        """
        if self.time_budget is None:
            return None
        if self._tuner is None:
            return float(self.time_budget)
        return max(0.0, self.time_budget - self._tuner.time_used())

    def _ensure_loaded(self) -> None:
        """Reads a stored project when this `Search` has not run one."""
        if self._tuner is None and self.project.exists():
            if not self.overwrite or self._overwritten:  # Else fit() will delete it.
                self._get_tuner()
