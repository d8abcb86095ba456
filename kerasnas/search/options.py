"""The checks of `Search`'s arguments, and the oracle it makes from a strategy name."""

from __future__ import annotations

import difflib
import logging
import numbers
from typing import Any

import keras_tuner
from keras_tuner.engine import metrics_tracking

from kerasnas import backend
from kerasnas.objectives import objective_inputs
from kerasnas.oracles import STRATEGIES
from kerasnas.oracles.base import NasOracle
from kerasnas.recipe import Recipe
from kerasnas.spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: `Search.fit`'s own arguments.
FIT_ARGUMENTS = ("x", "y", "validation_data", "epochs", "batch_size", "callbacks", "verbose")
#: `keras.Model.fit` arguments that `Search.fit` takes too (`validation_split` it
#: applies itself, the others go to every trial's `model.fit`).
KERAS_FIT_ARGUMENTS = (
    "validation_split",
    "class_weight",
    "steps_per_epoch",
    "validation_steps",
    "validation_freq",
)
#: `keras.Model.fit` arguments that kerasnas sets itself, and why `Search.fit` refuses them.
SET_BY_KERASNAS = {
    "shuffle": "kerasnas reshuffles array training data every epoch itself (validation "
    "data never); shuffle a tf.data.Dataset in its pipeline (dataset.shuffle(n) "
    "before .batch()).",
    "sample_weight": "kerasnas trains on tf.data pipelines, for which Keras takes no "
    "sample_weight; weigh classes with class_weight={class_index: weight} instead.",
    "initial_epoch": "every trial trains from epoch 0 for the epochs its strategy gives "
    "it; pass epochs=.",
    "validation_batch_size": "kerasnas batches validation arrays with batch_size (a "
    "validation dataset keeps its own batches); pass batch_size=.",
}
# Words of metric names that are better high, and better low (for a warning only).
_BETTER_HIGH = ("acc", "auc", "precision", "recall")
_BETTER_LOW = ("loss", "error", "bits_per", "perplexity")


def check_fit_arguments(fit_kwargs: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """`Search.fit`'s `validation_split` and the other arguments for every trial's `model.fit`.

    Raises:
        TypeError: for a name `fit` does not take, with the closest one it takes.
        ValueError: for a `keras.Model.fit` argument that kerasnas sets itself, or a
            `validation_split` of 0 (which keeps nothing for validation).
    """
    accepted = [*FIT_ARGUMENTS, *KERAS_FIT_ARGUMENTS]
    for name in fit_kwargs:
        if name in SET_BY_KERASNAS:
            raise ValueError(f"fit() does not take {name}=: {SET_BY_KERASNAS[name]}")
        if name not in KERAS_FIT_ARGUMENTS:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f"; did you mean {close[0]}=?" if close else "."
            raise TypeError(
                f"fit() got an unexpected keyword argument {name!r}{hint} fit() takes "
                f"{', '.join(accepted)}."
            )
    kwargs = dict(fit_kwargs)
    split = kwargs.pop("validation_split", None)
    if split is not None and not isinstance(split, bool) and split == 0:
        raise ValueError(
            f"validation_split={split!r} keeps no examples for validation. Pass the fraction "
            "of x, y to validate on (e.g. validation_split=0.2), or validation_data=(x_val, "
            "y_val); to validate on nothing, leave validation_split out."
        )
    return (0.0 if split is None else split), kwargs


def check_seed(seed: Any) -> None:
    """Raises ValueError unless `seed` is None or an integer >= 0."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            "seed must be an integer >= 0 (it seeds the strategy, the trials' initial weights "
            f"and the data order), or None for a random seed. Received: seed={seed!r}."
        )


def check_objective_direction(objective: Any) -> None:
    """Raises ValueError unless each objective's direction is "max" or "min"; warns when a
    metric named like an accuracy is minimised or one named like a loss maximised."""
    for member in getattr(objective, "objectives", None) or [objective]:
        name, direction = member.name, member.direction
        if direction not in ("max", "min"):
            text = str(direction).lower()
            if text.startswith(("max", "high", "up", "larg", "big")):
                fix = "max"
            elif text.startswith(("min", "low", "down", "small")):
                fix = "min"
            else:
                fix = metrics_tracking.infer_metric_direction(name) or "max"
            raise ValueError(
                f"The objective {name!r} has direction {direction!r}; keras-tuner takes "
                f"'max' or 'min' only: pass keras_tuner.Objective({name!r}, {fix!r})."
            )
        lowered = str(name).lower()
        high = any(word in lowered for word in _BETTER_HIGH)
        low = any(word in lowered for word in _BETTER_LOW)
        if high != low and (direction == "min") == high:
            better, fix = ("higher", "max") if high else ("lower", "min")
            log.warning(
                "The objective %r is %s, but its name says it is better %s: the search "
                "will prefer the worst networks. Unless that is meant, pass "
                "keras_tuner.Objective(%r, %r) (or --objective=%s:%s).",
                name,
                "minimised" if direction == "min" else "maximised",
                better,
                name,
                fix,
                name,
                fix,
            )


def make_oracle(
    space: SearchSpace,
    strategy: str | keras_tuner.Oracle,
    objective: Any,
    max_trials: int | None,
    seed: int | None,
    oracle_kwargs: dict[str, Any],
) -> tuple[keras_tuner.Oracle, str]:
    """The oracle of a strategy (a name in `kerasnas.oracles.STRATEGIES`, or an instance).

    Raises ValueError for a seed that is not an integer >= 0 (`check_seed`), and for
    an objective direction other than "max" or "min" (`check_objective_direction`),
    before any training.
    """
    check_seed(seed)
    oracle, name = _make_oracle(space, strategy, objective, max_trials, seed, oracle_kwargs)
    check_objective_direction(oracle.objective)
    return oracle, name


def _make_oracle(
    space: SearchSpace,
    strategy: str | keras_tuner.Oracle,
    objective: Any,
    max_trials: int | None,
    seed: int | None,
    oracle_kwargs: dict[str, Any],
) -> tuple[keras_tuner.Oracle, str]:
    if isinstance(strategy, keras_tuner.Oracle):
        if oracle_kwargs:
            raise ValueError(
                f"Oracle arguments {sorted(oracle_kwargs)} cannot be applied to "
                "an oracle instance; pass them to the oracle instead."
            )
        names = [name for name, cls in STRATEGIES.items() if cls is type(strategy)]
        name = names[0] if names else type(strategy).__name__
        return _adopt_oracle(strategy, space, objective, max_trials), name
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown strategy {strategy!r}. Choose one of "
                f"{sorted(STRATEGIES)}, or pass an oracle instance."
            )
        oracle = STRATEGIES[strategy](
            space,
            objective=objective or "val_accuracy",
            max_trials=10 if max_trials is None else max_trials,
            seed=seed,
            **oracle_kwargs,
        )
        return oracle, strategy
    raise ValueError(
        f"strategy must be a strategy name or a keras_tuner.Oracle. Received: {strategy!r}."
    )


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


def check_distribution_strategy(strategy: Any) -> None:
    """Refuses strategies that Keras 3 cannot train with."""
    if strategy is not None:
        backend.require_tensorflow(
            "distribution_strategy (a tf.distribute strategy)",
            "keras.distribution (JAX's data parallelism, set before the search) or "
            "keras-tuner's chief/worker mode",
        )
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


def check_recipe(recipe: Any) -> None:
    if recipe is not None and not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a kerasnas.Recipe. Received: {recipe!r}.")


def resolve_recipe(
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


def check_objective(
    objective: keras_tuner.Objective, produced: list[str], has_validation: bool = True
) -> None:
    """Raises ValueError when the objective needs a metric that the trials do not produce."""
    for name in objective_inputs(objective):
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


def check_evaluator(evaluator: Any, space: SearchSpace, oracle: Any) -> None:
    """Raises ValueError when an evaluator cannot stand in for the search's training."""
    if evaluator is None:
        return
    if getattr(evaluator, "space", space) is not space:
        raise ValueError(
            "The evaluator was built on another space object than the one given to "
            "Search; build both on the same space."
        )
    if getattr(oracle, "halving", None) is not None:
        raise ValueError(
            "halving continues trials' training over rungs of epochs, but an evaluator "
            "looks trials up instead of training them; drop one of the two."
        )
