"""What the one-shot methods share: the supernet of a space, the options, ranking, the result.

Each method (`uniform`, `spos`, `enas`, `darts`, `gdas`) is a module that
defines a `METHOD`: its name, a dataclass of its options, and a `train`
function that trains the supernet and returns how to rank candidates.
`kerasnas.oneshot.methods.run` prepares the data and the trainer and runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerasnas.architecture import Scalar
from kerasnas.oneshot.nasbench201 import NASBench201Supernet
from kerasnas.oneshot.supernet import Supernet
from kerasnas.oneshot.train import OneShotTrainer, Sampler, rank_paths
from kerasnas.spaces.base import SearchSpace
from kerasnas.spaces.nasbench201 import NASBench201Space

logger = logging.getLogger(__name__)

#: Candidate paths (one candidate index per slot) with their scores, best first.
Ranked = list[tuple[list[int], float]]


@dataclasses.dataclass
class OneShotResult:
    """What a one-shot search found.

    Args:
        method: The method's name.
        ranking: Decision values of the candidates, best first.
        scores: Each candidate's score (higher is better): minus its
            one-shot validation loss, or its one-shot validation accuracy
            with `rank_by="accuracy"` (uniform, SPOS, ENAS), or log-probability under the learnt
            architecture weights (DARTS, GDAS).
        history: One dict per supernet epoch (loss, accuracy, time, ...).
        train_time: Seconds spent training the supernet (and controller or
            architecture weights).
        rank_time: Seconds spent scoring candidates.
        supernet: The trained supernet.
        trainer: Its `OneShotTrainer` (to calibrate and score more paths).
        calibration: The training batches that calibrate a path's BatchNorm.
        settings: The supernet training's epochs, batch size, optimizer and
            learning rate (the defaults resolved).
    """

    method: str
    ranking: list[dict[str, Scalar]]
    scores: list[float]
    history: list[dict[str, Any]]
    train_time: float
    rank_time: float
    supernet: Supernet
    trainer: OneShotTrainer
    calibration: tf.data.Dataset
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


# -- The supernet of a space --------------------------------------------------------
def supernet_class(space: SearchSpace) -> Callable[..., Supernet]:
    """The supernet class of a space.

    Args:
        space: A search space.

    Raises:
        ValueError: for a space without a supernet.
    """
    from kerasnas.oneshot.nasnet import NASNetSupernet
    from kerasnas.oneshot.rnn import RNNSupernet
    from kerasnas.spaces.nasnet import NASNetSpace
    from kerasnas.spaces.rnn import RNNCellSpace

    builders: dict[type, Callable[..., Supernet]] = {
        NASBench201Space: NASBench201Supernet,
        NASNetSpace: NASNetSupernet,
        RNNCellSpace: RNNSupernet,
    }
    builder = next((b for t, b in builders.items() if isinstance(space, t)), None)
    if builder is None:
        raise ValueError(
            f"One-shot search has no supernet for {type(space).__name__}. It supports "
            f"{sorted(t.__name__ for t in builders)}; search other spaces with the "
            "'random', 'evolution', 'controller' or 'morphism' strategies."
        )
    return builder


def build_supernet(
    space: SearchSpace, distribution_strategy: Any = None, **kwargs: Any
) -> Supernet:
    """The supernet of a configured space (in the strategy's scope when given).

    Args:
        space: A configured search space with a supernet.
        distribution_strategy: Optional `tf.distribute.Strategy` whose scope
            the supernet's variables are created in.
        **kwargs: Arguments of the supernet class.

    Raises:
        ValueError: for a space without a supernet.
    """
    builder = supernet_class(space)
    scope = (
        distribution_strategy.scope()
        if distribution_strategy is not None
        else contextlib.nullcontext()
    )
    with scope:
        return builder(space, **kwargs)


# -- Methods and their options ------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What a method's `train` is given (built by `methods.run`).

    Args:
        supernet: The supernet.
        trainer: Its `OneShotTrainer`.
        train: Training batches of the run's batch size, sparse labels.
        validation: Validation batches, sparse labels.
        epochs: Passes over `train`.
        total: Weight steps in all (`epochs` times the batches of `train`).
        rng: The run's generator (paths, candidates).
        seed: The run's seed.
        progress: Whether to log a line per epoch.
        num_candidates: Architectures to rank.
        calibration_batches: Batches that calibrate a path's BatchNorm.
        candidates: Architectures to rank instead of drawn ones, or None.
        distribution_strategy: The weight steps' `tf.distribute.Strategy`, or None.
        rank_by: What candidates are ranked by: `"loss"` or `"accuracy"`.
    """

    supernet: Supernet
    trainer: OneShotTrainer
    train: tf.data.Dataset
    validation: tf.data.Dataset
    epochs: int
    total: int
    rng: np.random.Generator
    seed: int
    progress: bool
    num_candidates: int
    calibration_batches: int
    candidates: Sequence[Mapping[str, Scalar]] | None = None
    distribution_strategy: Any = None
    rank_by: str = "loss"


@dataclasses.dataclass
class Trained:
    """What a method's `train` returns.

    Args:
        history: One dict per epoch.
        rank: Scores the candidates (timed apart from the training).
    """

    history: list[dict[str, Any]]
    rank: Callable[[], Ranked]


@dataclasses.dataclass(frozen=True)
class Method:
    """A one-shot method: its name, options and training.

    Args:
        name: The name `methods.run` takes.
        options: The dataclass of its options (keyword arguments of `run`).
        train: `train(context, options) -> Trained`.
        takes_candidates: Whether it ranks given `candidates=`.
        optimizer: Its default optimizer of the shared weights.
        batch_size: Its default batch size of the weight steps.
    """

    name: str
    options: type
    train: Callable[[Context, Any], Trained]
    takes_candidates: bool = False
    optimizer: str = "sgd"
    batch_size: int = 64

    def parse_options(self, options: Mapping[str, Any]) -> Any:
        """The method's options dataclass from keyword options.

        Args:
            options: Option names and values.

        Raises:
            ValueError: naming options the method does not take (and those it
                takes), or an option with a bad value (and its valid values).
        """
        allowed = sorted(f.name for f in dataclasses.fields(self.options))
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(
                f"Options {unknown} do not apply to the {self.name!r} method; it takes {allowed}."
            )
        return self.options(**options)


def bad_option(option: str, value: Any, valid: str) -> ValueError:
    """The error of an option with a bad value.

    Args:
        option: The option's name.
        value: Its value.
        valid: What it must be, e.g. "a number in [0, 1)".
    """
    return ValueError(f"{option} must be {valid}. Received: {option}={value!r}.")


def is_number(value: Any) -> bool:
    """Whether `value` is a real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_ghost_batch_size(value: int | None) -> None:
    """Checks the `ghost_batch_size` option: None or a positive integer.

    Args:
        value: The option's value.
    """
    if value is not None and not (is_integer(value) and value >= 1):
        raise bad_option("ghost_batch_size", value, "a positive integer or None")


def check_slot_count(option: str, value: int | None, lowest: int) -> None:
    """Checks that an option counting slots is None or an integer >= `lowest`.

    (Its upper bound, from the supernet's slots, is checked by `Darts`.)

    Args:
        option: The option's name.
        value: Its value.
        lowest: Its lowest valid value.
    """
    if value is not None and not (is_integer(value) and value >= lowest):
        raise bad_option(option, value, f"None or an integer >= {lowest}")


# -- Training and ranking --------------------------------------------------------------
def log(progress: bool, text: str) -> None:
    """Logs `text` at INFO on the `kerasnas` logger when `progress`."""
    if progress:
        logger.info(text)


def distinct_candidates(
    supernet: Supernet, draw: Callable[[], list[int]], n: int, tries: int = 50
) -> list[list[int]]:
    """Up to `n` paths from `draw()` whose architectures are pairwise non-isomorphic.

    Args:
        supernet: The supernet (its space decodes the paths).
        draw: Returns one path (candidate index per slot).
        n: Paths wanted.
        tries: Repeats in a row after which fewer than `n` are returned.
    """
    space = supernet.space
    found: dict[str, list[int]] = {}
    misses = 0
    while len(found) < n and misses < tries:
        indices = draw()
        key = space.decode(supernet.values_of(indices)).hash()
        if key in found:
            misses += 1
            continue
        misses = 0
        found[key] = indices
    return list(found.values())


def rank_by_score(context: Context, paths: Sequence[list[int]]) -> Ranked:
    """Paths by one-shot score (`context.rank_by`; BatchNorm recalibrated), best first.

    Args:
        context: The run's context.
        paths: Candidate paths.
    """
    scores = rank_paths(
        context.trainer,
        paths,
        context.train,
        context.validation,
        context.calibration_batches,
        context.progress,
        context.rank_by,
    )
    order = np.argsort(-np.asarray(scores), kind="stable")
    return [(paths[i], float(scores[i])) for i in order]


def train_shared(context: Context, sampler: Sampler, name: str) -> Trained:
    """Trains the shared weights on paths from `sampler`; ranks drawn or given candidates.

    The candidates are `context.candidates` when given, else up to
    `num_candidates` distinct architectures drawn uniformly; they are ranked
    by one-shot score (`context.rank_by`).

    Args:
        context: The run's context.
        sampler: Draws each weight step's path.
        name: The method's name (for the log).
    """
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(context.epochs):
        start = time.perf_counter()
        step, loss, acc = context.trainer.train_epoch(
            context.train, sampler, context.rng, step, context.total
        )
        record = {"epoch": epoch + 1, "loss": loss, "accuracy": acc}
        record["time"] = time.perf_counter() - start
        history.append(record)
        log(
            context.progress,
            f"{name} supernet epoch {epoch + 1}/{context.epochs} loss={loss:.4f} "
            f"accuracy={acc:.4f} time={record['time']:.1f}s",
        )

    def rank() -> Ranked:
        supernet = context.supernet
        if context.candidates is not None:
            paths = [supernet.indices(v) for v in context.candidates]
        else:
            paths = distinct_candidates(
                supernet, lambda: supernet.sample_indices(context.rng), context.num_candidates
            )
        return rank_by_score(context, paths)

    return Trained(history, rank)


def rank_by_probability(
    supernet: Supernet,
    probs: np.ndarray,
    valid: np.ndarray,
    final: list[int],
    rng: np.random.Generator,
    n: int,
) -> Ranked:
    """`final`, then up to `n - 1` other paths drawn from `probs`, by log-probability.

    Args:
        supernet: The supernet (its space tells isomorphic paths apart).
        probs: Each slot's candidate probabilities (zero for padding).
        valid: The supernet's candidate mask.
        final: The derived path, ranked first.
        rng: The generator the others are drawn with.
        n: Paths wanted.
    """
    log_p = np.log(np.where(valid > 0, probs, 1.0) + 1e-12)

    def draw() -> list[int]:
        return [int(rng.choice(len(p), p=p / p.sum())) for p in probs]

    others = distinct_candidates(supernet, draw, n)
    key = supernet.space.decode(supernet.values_of(final)).hash()
    others = [p for p in others if supernet.space.decode(supernet.values_of(p)).hash() != key]
    scored = [(p, float(sum(log_p[s, k] for s, k in enumerate(p)))) for p in others]
    scored.sort(key=lambda item: -item[1])
    first = (final, float(sum(log_p[s, k] for s, k in enumerate(final))))
    return [first, *scored[: n - 1]]
