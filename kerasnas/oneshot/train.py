"""Training a supernet's shared weights, and scoring paths through it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnas.oneshot.supernet import Supernet

logger = logging.getLogger(__name__)

#: A sampler maps (step, total steps, rng) to the (weights, active) matrices of one step.
Sampler = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def sparse_labels(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Turns one-hot label rows into class indices (int32).

    Token sequences `(batch, steps)` keep their labels of the same shape (one
    per step); the trainer flattens them as the supernet flattens its logits.
    """

    def to_index(x, y):
        if len(x.shape) == 2 and len(y.shape) == 2 and x.shape[-1] == y.shape[-1]:
            return tf.cast(x, "float32"), tf.cast(y, "int32")  # Next-token labels.
        if len(y.shape) > 1 and y.shape[-1] is not None and y.shape[-1] > 1:
            y = tf.argmax(y, axis=-1)
        return tf.cast(x, "float32"), tf.cast(tf.reshape(y, [-1]), "int32")

    return dataset.map(to_index)


def rebatch(dataset: tf.data.Dataset, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    """The batched `(x, y)` dataset rebatched to `batch_size`."""
    return dataset.unbatch().batch(batch_size, drop_remainder=drop_remainder)


OPTIMIZERS = ("sgd", "adam")
#: Each optimizer's default initial learning rate of the shared weights.
LEARNING_RATES = {"sgd": 0.05, "adam": 2e-3}


def check_optimizer(optimizer: str) -> None:
    """Raises ValueError unless `optimizer` names one of `OPTIMIZERS`."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {list(OPTIMIZERS)}. Received: optimizer={optimizer!r}."
        )


class OneShotTrainer:
    """Trains a supernet's shared weights and scores paths through it.

    Weight steps use SGD with Nesterov momentum (or Adam) and a cosine
    learning-rate decay over `total_steps`, cross-entropy plus `weight_decay`
    times the squared kernels of the shared layers and of the *active* candidates only
    (Bender et al.: inactive paths are not regularised), and global-norm
    gradient clipping. Under a `distribution_strategy` each weight step runs
    on every replica (the supernet and optimizer must have been created in
    the strategy's scope; `build()` does that). Calibration and scoring run
    on one device.

    Args:
        supernet: A `Supernet`.
        total_steps: Weight steps the training will take (for the schedule).
        learning_rate: Initial learning rate. Defaults to 0.05.
        momentum: SGD momentum. Defaults to 0.9.
        optimizer: `"sgd"` (Nesterov momentum, as the papers) or `"adam"`
            (trains a supernet faster when it gets only a few hundred
            steps; use a learning rate near 1e-3). Defaults to `"sgd"`.
        weight_decay: L2 coefficient on active kernels. Defaults to 3e-4.
        grad_clip: Global gradient-norm clip. Defaults to 5.
        distribution_strategy: Optional `tf.distribute.Strategy`.
    """

    def __init__(
        self,
        supernet: Supernet,
        total_steps: int,
        *,
        learning_rate: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        distribution_strategy: Any = None,
        optimizer: str = "sgd",
    ):
        check_optimizer(optimizer)
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}.")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0. Received: {weight_decay}.")
        self.supernet = supernet
        self.strategy = distribution_strategy
        self.weight_decay = float(weight_decay)
        self.grad_clip = float(grad_clip)
        self.learning_rate = float(learning_rate)
        with self.scope():
            schedule = keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps=max(int(total_steps), 1), alpha=1e-3
            )
            if optimizer == "adam":
                self.optimizer = keras.optimizers.Adam(schedule)
            else:
                self.optimizer = keras.optimizers.SGD(schedule, momentum=momentum, nesterov=True)
            self.optimizer.build(supernet.trainable_variables)
        self._train = tf.function(self._train_step, reduce_retracing=True)
        self._logits = tf.function(self._logits_fn, reduce_retracing=True)
        self._calibrate = tf.function(self._calibrate_fn, reduce_retracing=True)

    def scope(self) -> Any:
        return self.strategy.scope() if self.strategy is not None else _NullScope()

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def distribute(self, dataset: tf.data.Dataset) -> Any:
        return (
            dataset
            if self.strategy is None
            else self.strategy.experimental_distribute_dataset(dataset)
        )

    # -- Weight steps -------------------------------------------------------
    def _replica_step(self, x, y, weights, active):
        y = tf.cast(tf.reshape(y, [-1]), "int32")
        variables = self.supernet.trainable_variables
        # The global batch: every replica's part together (equal parts).
        global_batch = tf.cast(tf.shape(y)[0] * self.replicas, "float32")
        with tf.GradientTape() as tape:
            logits = self.supernet(x, weights, active, training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            loss = tf.reduce_sum(ce) / global_batch
            if self.weight_decay:
                loss += self.weight_decay * self.supernet.regularization(active) / self.replicas
        grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)
        ]
        grads, _ = tf.clip_by_global_norm(grads, self.grad_clip)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, "int32"), y), "float32"))
        return tf.reduce_sum(ce), correct, tf.cast(tf.shape(y)[0], "float32")

    def _train_step(self, x, y, weights, active):
        if self.strategy is None:
            return self._replica_step(x, y, weights, active)
        results = self.strategy.run(self._replica_step, args=(x, y, weights, active))
        return tuple(
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results
        )

    def train_step(
        self, x, y, weights: np.ndarray, active: np.ndarray
    ) -> tuple[float, float, float]:
        """One weight step on a batch; returns (summed loss, correct, examples)."""
        out = self._train(x, y, tf.constant(weights, "float32"), tf.constant(active, "float32"))
        return tuple(float(v) for v in out)  # type: ignore[return-value]

    def train_epoch(
        self,
        dataset: Any,
        sampler: Sampler,
        rng: np.random.Generator,
        step: int,
        total_steps: int,
        between: Callable[[int], None] | None = None,
    ) -> tuple[int, float, float]:
        """One pass over `dataset`, a path drawn by `sampler` per step.

        `between(step)` runs after each weight step (e.g. an architecture
        step). Returns (steps done so far, mean loss, accuracy).
        """
        loss = correct = seen = 0.0
        for x, y in self.distribute(dataset):
            weights, active = sampler(step, total_steps, rng)
            batch_loss, batch_correct, n = self.train_step(x, y, weights, active)
            loss, correct, seen = loss + batch_loss, correct + batch_correct, seen + n
            step += 1
            if between is not None:
                between(step)
        return step, loss / max(seen, 1.0), correct / max(seen, 1.0)

    # -- Scoring paths ------------------------------------------------------
    def _logits_fn(self, x, weights, active, training):
        return self.supernet(x, weights, active, training=training)

    def logits(self, x, path: np.ndarray, training: bool = False) -> tf.Tensor:
        """The supernet's logits for one path (training: BatchNorm on the batch's statistics)."""
        weights = tf.constant(path, "float32")
        return self._logits(x, weights, weights, bool(training))

    def _calibrate_fn(self, x, weights, active):
        return self.supernet(x, weights, active, calibrate=True)

    def calibrate(self, dataset: tf.data.Dataset, path: np.ndarray, batches: int = 10) -> None:
        """Recomputes the BatchNorm statistics of one path on `batches` batches."""
        self.supernet.reset_statistics()
        weights = tf.constant(path, "float32")
        for x, _ in dataset.take(batches):
            self._calibrate(x, weights, weights)

    def evaluate(self, dataset: tf.data.Dataset, path: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of one path on `dataset` (inference mode)."""
        total = correct = seen = 0.0
        for x, y in dataset:
            y = tf.cast(tf.reshape(y, [-1]), "int32")
            logits = self.logits(x, path)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            total += float(tf.reduce_sum(ce))
            correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, "int32") == y, "int32")))
            seen += int(y.shape[0])
        return total / max(seen, 1.0), correct / max(seen, 1.0)

    def accuracy(self, dataset: tf.data.Dataset, path: np.ndarray) -> float:
        """Accuracy of one path on `dataset` (inference mode)."""
        return self.evaluate(dataset, path)[1]

    def loss(self, dataset: tf.data.Dataset, path: np.ndarray) -> float:
        """Mean cross-entropy of one path on `dataset` (inference mode)."""
        return self.evaluate(dataset, path)[0]

    def score(
        self,
        path: np.ndarray,
        calibration: tf.data.Dataset,
        validation: tf.data.Dataset,
        calibration_batches: int = 10,
        rank_by: str = "loss",
    ) -> float:
        """One-shot score of a path (higher is better), its BatchNorm statistics recomputed.

        Args:
            path: The path.
            calibration: Batches that recompute its BatchNorm statistics.
            validation: Batches it is scored on.
            calibration_batches: Batches of `calibration` used. Defaults to 10.
            rank_by: `"loss"`: minus the validation cross-entropy (the default:
                it ranked architectures better than accuracy in
                `benchmarks/ranking.py`), or `"accuracy"`.
        """
        check_rank_by(rank_by)
        self.calibrate(calibration, path, calibration_batches)
        loss, accuracy = self.evaluate(validation, path)
        return -loss if rank_by == "loss" else accuracy


RANK_BY = ("loss", "accuracy")


def check_rank_by(rank_by: str) -> None:
    """Refuses a one-shot score other than `RANK_BY`'s."""
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}. Received: {rank_by!r}.")


class _NullScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# -- Samplers ------------------------------------------------------------------
def single_path(supernet: Supernet, fair: bool = False) -> Sampler:
    """SPOS (Guo et al. 2020): one candidate per slot, uniformly at random.

    With `fair=True`, strict fairness as in FairNAS (Chu et al. 2019): every
    K steps (K the most candidates of a slot), each slot goes through a fresh
    random permutation of its candidates, so every candidate is trained
    equally often (slots with fewer candidates take extra random ones).
    """
    sizes = [len(s.candidates) for s in supernet.slots]
    k = max(sizes)
    order: list[np.ndarray] = []

    def sample(step: int, total: int, rng: np.random.Generator):
        if not fair:
            path = supernet.path(supernet.sample_indices(rng))
            return path, path
        if step % k == 0 or not order:
            order[:] = [
                np.concatenate([rng.permutation(n), rng.integers(n, size=k - n)]) for n in sizes
            ]
        path = supernet.path([int(o[step % k]) for o in order])
        return path, path

    return sample


def path_dropout(supernet: Supernet, drop_max: float = 0.5, ramp: float = 1.0) -> Sampler:
    """Bender et al. (2018): all candidates, each dropped with a rate that ramps up.

    At step t of T, the chance that a slot loses all its candidates is
    `r = drop_max * min(1, t / (ramp * T))`; each candidate of a slot with k
    candidates is dropped independently with probability `r ** (1 / k)`.
    Where every candidate of a slot is dropped, one is kept at random (a
    path must go through each slot). Kept candidates have weight 1.

    Args:
        supernet: The supernet.
        drop_max: The final rate r. Defaults to 0.5.
        ramp: Share of training over which r grows linearly to `drop_max`.
    """
    if not 0.0 <= drop_max < 1.0:
        raise ValueError(f"drop_max must lie in [0, 1). Received: {drop_max}.")
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"ramp must lie in (0, 1]. Received: {ramp}.")
    sizes = np.array([len(s.candidates) for s in supernet.slots])
    valid = supernet.candidate_mask()

    def sample(step: int, total: int, rng: np.random.Generator):
        r = drop_max * min(1.0, step / max(ramp * total, 1.0))
        p = (r ** (1.0 / sizes))[:, None] if r > 0 else np.zeros((len(sizes), 1))
        kept = (rng.random(valid.shape) >= p).astype("float32") * valid
        for s in np.flatnonzero(kept.sum(axis=1) == 0):
            kept[s, rng.integers(sizes[s])] = 1.0
        return kept, kept

    return sample


def rank_paths(
    trainer: OneShotTrainer,
    candidates: Sequence[Sequence[int]],
    calibration: tf.data.Dataset,
    validation: tf.data.Dataset,
    calibration_batches: int = 10,
    progress: bool = True,
    rank_by: str = "loss",
) -> list[float]:
    """The one-shot score of each candidate path (same order; higher is better).

    Args:
        trainer: The supernet's trainer.
        candidates: Paths, one candidate index per slot.
        calibration: Batches that recompute each path's BatchNorm statistics.
        validation: Batches the score is measured on.
        calibration_batches: Batches of `calibration` used. Defaults to 10.
        progress: Log the best score five times along the way.
        rank_by: `"loss"` (minus the validation cross-entropy, the default) or
            `"accuracy"` (see `OneShotTrainer.score`).
    """
    check_rank_by(rank_by)
    scores = []
    start = time.perf_counter()
    for i, indices in enumerate(candidates):
        path = trainer.supernet.path(list(indices))
        scores.append(trainer.score(path, calibration, validation, calibration_batches, rank_by))
        if progress and (i + 1) % max(1, len(candidates) // 5) == 0:
            logger.info(
                f"one-shot scores {i + 1}/{len(candidates)} "
                f"best={max(scores):.4f} time={time.perf_counter() - start:.1f}s"
            )
    return scores
