"""Training the best networks of a search again, from scratch, for the final model."""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

import keras

from kerasnas import report
from kerasnas.errors import CorruptStoreError
from kerasnas.recipe import Recipe
from kerasnas.search.options import check_recipe, resolve_recipe
from kerasnas.training import inputs as inputs_module
from kerasnas.training.measure import measure_step_seconds, steps_per_epoch
from kerasnas.training.pacing import EpochProgress, epochs_within, fit_within
from kerasnas.training.runner import scope

log = logging.getLogger(__name__)


def check_retrain_arguments(
    epochs: int | None, time_budget: float | None, top_k: int, validation_data: Any
) -> None:
    """Raises ValueError for arguments of `Search.retrain` that do not fit together."""
    if time_budget is not None:
        if isinstance(time_budget, bool) or not (
            isinstance(time_budget, (int, float)) and time_budget > 0
        ):
            raise ValueError(
                f"time_budget must be a number of seconds > 0. Received: {time_budget!r}."
            )
        if epochs is not None:
            raise ValueError("Pass epochs or time_budget to retrain(), not both.")
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1. Received: top_k={top_k!r}.")
    if top_k > 1 and validation_data is None:
        raise ValueError(
            f"top_k={top_k} keeps the best network on validation data: pass validation_data."
        )


def retrain(
    search: Any,
    x: Any,
    y: Any,
    validation_data: Any,
    *,
    epochs: int | None,
    batch_size: int | None,
    top_k: int,
    recipe: Recipe | None,
    time_budget: float | None,
) -> keras.Model:
    """`Search.retrain` (see its documentation): returns the retrained model."""
    check_recipe(recipe)
    check_retrain_arguments(epochs, time_budget, top_k, validation_data)
    started = time.perf_counter()
    recipe, epochs, batch_size = resolve_recipe(
        recipe or search.recipe,
        1 if time_budget is not None else epochs,  # With a budget: each network's own epochs.
        batch_size,
        None,
        32,
    )
    trials = search.best_trials(top_k)
    inputs = inputs_module.examine_inputs(x, y, validation_data)
    inputs_module.check_fits_space(search.space, inputs)
    seed = 0 if search.seed is None else search.seed
    if top_k == 1:
        train_data = inputs.merged(batch_size, seed)
    else:
        train_data = inputs_module.as_dataset(inputs.train, batch_size, shuffle=True, seed=seed)
    steps = 1
    # Batches per epoch, for the epochs that fit in the time budget.
    epoch_steps = steps_per_epoch(train_data) if time_budget is not None else 0
    if recipe is not None:
        steps = recipe.steps_in(train_data)
        train_data = recipe.augment(train_data, seed=seed)
    objective = search.objective
    metric = objective.name.removeprefix("val_")
    better = max if objective.direction == "max" else min
    tuner = search._get_tuner()

    def compiled(trial: Any, epochs: int) -> keras.Model:
        model = tuner.build_model(trial)
        if recipe is not None:
            with scope(search.distribution_strategy):
                recipe.replace(epochs=epochs).compile(model, steps, search.space.compile_metrics())
        return model

    best: tuple[float, keras.Model] | None = None
    for i, trial in enumerate(trials):
        note = ""
        if time_budget is not None:
            # This network's share: what is left of the budget over the networks left.
            share = (time_budget - (time.perf_counter() - started)) / (len(trials) - i)
            began = time.perf_counter()
            step_s, first_s = measure_step_seconds(compiled(trial, epochs), train_data)
            epochs = epochs_within(
                share - (time.perf_counter() - began), step_s, epoch_steps, first_s
            )
            note = f" (time_budget: {share:.0f} s, {step_s * 1000:.0f} ms a step)"
        if search.seed is not None:
            keras.utils.set_random_seed(search.seed * 100_003 + int(trial.trial_id))
        model = compiled(trial, epochs)
        log.info(
            "retraining trial %s (%s params) for %d epochs%s",
            trial.trial_id,
            f"{model.count_params():,}",
            epochs,
            note,
        )
        callbacks = [EpochProgress(epochs)]
        # The pipeline shuffles (and augments) every epoch.
        if time_budget is None:
            model.fit(train_data, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
        else:
            schedule = None
            if recipe is not None and recipe.schedule != "constant":
                schedule = functools.partial(recipe.learning_rate_schedule, steps)
            fit_within(model, train_data, epochs, began + share, schedule, callbacks)
        if top_k == 1:
            return model
        val = inputs_module.as_dataset(inputs.validation, batch_size, shuffle=False, seed=seed)
        scores = model.evaluate(val, verbose=0, return_dict=True)
        if metric not in scores:
            raise ValueError(
                f"top_k > 1 scores networks by the objective's metric {metric!r}, which "
                f"evaluate() does not give (it gives {sorted(scores)}); use top_k=1."
            )
        log.info("  validation %s=%.4f", metric, scores[metric])
        if best is None or better(scores[metric], best[0]) != best[0]:
            best = (scores[metric], model)
    return best[1]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


class FinalModel:
    """The final-model side of `kerasnas.Search`: the best trial's model, training the
    best networks again, and exporting the result (mixed into `Search`)."""

    distribution_strategy: Any
    verbose: int
    _retrained: keras.Model | None

    def best_model(self) -> keras.Model:
        """The best trial's trained model (weights of its best epoch).

        Raises:
            CorruptStoreError: the trial's checkpoint is missing, or cannot be
                read (truncated or overwritten); the message names the file
                and the fix (restore it, or `retrain()`).
        """
        trial = self.best_trials(1)[0]
        tuner = self._get_tuner()
        try:
            return tuner.load_model(trial)
        except OSError as err:  # h5py's, which does not name the file.
            path = tuner._get_checkpoint_fname(trial.trial_id)
            raise CorruptStoreError(
                f"The trained weights of trial {trial.trial_id} ({path}) cannot be read "
                f"({_one_line(err)}): the file is damaged. Restore it from a backup, or "
                "search.retrain(x, y, ...) trains its network again from scratch."
            ) from err

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
        with report.quiet(not self.verbose):
            self._retrained = retrain(
                self, x, y, validation_data, epochs=epochs, batch_size=batch_size,
                top_k=top_k, recipe=recipe, time_budget=time_budget,
            )  # fmt: skip
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
            with scope(self.distribution_strategy):
                model.optimizer.build(model.trainable_variables)
        strategy = self.distribution_strategy
        if strategy is not None and not strategy.extended.should_checkpoint:
            return None
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        model.save(path)
        return path
