"""DARTS (Liu et al., ICLR 2019): architecture weights learnt by gradient descent.

The `Darts` class also runs GDAS (`kerasnas.oneshot.gdas`), its Gumbel-softmax variant.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnas.oneshot.common import (
    Context,
    Method,
    Ranked,
    Trained,
    bad_option,
    check_slot_count,
    is_number,
    log,
    rank_by_probability,
)
from kerasnas.oneshot.supernet import Supernet
from kerasnas.oneshot.train import OneShotTrainer, Sampler


def check_arch_options(arch_learning_rate: float, arch_weight_decay: float) -> None:
    """Checks the options of the architecture weights' optimizer (DARTS and GDAS).

    Args:
        arch_learning_rate: Must be a positive number.
        arch_weight_decay: Must be a number >= 0.
    """
    if not (is_number(arch_learning_rate) and arch_learning_rate > 0):
        raise bad_option("arch_learning_rate", arch_learning_rate, "a positive number")
    if not (is_number(arch_weight_decay) and arch_weight_decay >= 0):
        raise bad_option("arch_weight_decay", arch_weight_decay, "a number >= 0")


@dataclasses.dataclass
class DartsOptions:
    """Options of the `"darts"` method (see `Darts`).

    Args:
        order: 1 (the validation gradient at the current weights) or 2
            (through one virtual weight step). Defaults to 1.
        arch_learning_rate: Adam learning rate of alpha. Defaults to 3e-4.
        arch_weight_decay: Weight decay of alpha. Defaults to 1e-3.
        max_parameter_free: Stops the search at the first epoch whose argmax
            has this many parameter-free slots (None, the default: never).
        parameter_free_limit: Derives at most this many parameter-free slots
            (None, the default: no limit).
    """

    order: int = 1
    arch_learning_rate: float = 3e-4
    arch_weight_decay: float = 1e-3
    max_parameter_free: int | None = None
    parameter_free_limit: int | None = None

    def __post_init__(self) -> None:
        if self.order not in (1, 2) or isinstance(self.order, bool):
            raise bad_option("order", self.order, "1 or 2")
        check_arch_options(self.arch_learning_rate, self.arch_weight_decay)
        check_slot_count("max_parameter_free", self.max_parameter_free, 1)
        check_slot_count("parameter_free_limit", self.parameter_free_limit, 0)


def train(context: Context, options: DartsOptions) -> Trained:
    """Trains the shared weights and alpha in turn; ranks by log-probability under alpha.

    Args:
        context: The run's context.
        options: The method's options.
    """
    if options.order == 2 and context.distribution_strategy:
        raise ValueError(
            "Second-order DARTS runs on one device; use order=1 under a distribution strategy."
        )
    return run_darts(context, "darts", dataclasses.asdict(options))


def run_darts(context: Context, method: str, options: dict[str, Any]) -> Trained:
    """Runs `Darts` (DARTS or GDAS) on the run's supernet.

    Args:
        context: The run's context.
        method: `"darts"` or `"gdas"`.
        options: Keyword arguments of `Darts`.
    """
    darts = Darts(context.supernet, context.trainer, method, seed=context.seed, **options)
    history = darts.search(
        context.trainer,
        context.train,
        context.validation,
        context.epochs,
        context.total,
        context.rng,
        context.progress,
    )
    return Trained(history, lambda: darts.ranking(context.rng, context.num_candidates))


METHOD = Method("darts", DartsOptions, train)


class Darts:
    """DARTS (Liu et al., ICLR 2019) and GDAS (Dong & Yang, CVPR 2019) on a supernet.

    Architecture weights alpha, one row per slot, mix each slot's candidates
    with softmax(alpha) (DARTS) or pick one by a hard Gumbel-softmax sample
    with a straight-through gradient (GDAS, temperature annealed from
    `tau_max` to `tau_min`). Weight steps on training batches alternate with
    architecture steps (Adam) on validation batches. DARTS's first order
    takes the validation gradient at the current weights; the second order
    differentiates through one virtual SGD step of the weights, with the
    Hessian-vector product by finite differences. The architecture is the
    argmax of alpha per slot.

    Two remedies for DARTS's collapse (on NAS-Bench-201 it drifts to
    parameter-free ops: skip connections, pooling, none):
    `parameter_free_limit=k` derives at most k parameter-free slots: where
    the argmax has more, the parameter-free winners with the lowest weight
    give way to their slot's highest-weighted candidate with weights
    (P-DARTS's limit on skip connections, Chen et al. 2019).
    `max_parameter_free=n` stops the search at the end of the first epoch
    whose argmax architecture has n parameter-free slots, and keeps the
    architecture derived the epoch before (early stopping as in DARTS+,
    Liang et al. 2019).

    Args:
        supernet: The supernet.
        trainer: Its `OneShotTrainer` (alpha is created in its scope).
        method: `"darts"` or `"gdas"`.
        order: 1 or 2 (DARTS). Defaults to 1.
        arch_learning_rate: Adam learning rate of alpha. Defaults to 3e-4.
        arch_weight_decay: Weight decay of alpha. Defaults to 1e-3.
        max_parameter_free: In [1, slots], or None. Defaults to None.
        parameter_free_limit: In [0, slots - 1], or None. Defaults to None.
        tau_max: GDAS's first temperature. Defaults to 10.
        tau_min: GDAS's last temperature. Defaults to 0.1.
        seed: Seed of alpha's initialisation.
    """

    def __init__(
        self,
        supernet: Supernet,
        trainer: OneShotTrainer,
        method: str = "darts",
        *,
        order: int = 1,
        arch_learning_rate: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        max_parameter_free: int | None = None,
        parameter_free_limit: int | None = None,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        seed: int = 0,
    ):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2. Received: order={order!r}.")
        if max_parameter_free is not None and not 1 <= max_parameter_free <= supernet.num_slots:
            raise ValueError(
                f"max_parameter_free must lie in [1, {supernet.num_slots}] (the slots). "
                f"Received: {max_parameter_free!r}."
            )
        if parameter_free_limit is not None and not 0 <= parameter_free_limit < supernet.num_slots:
            raise ValueError(
                f"parameter_free_limit must lie in [0, {supernet.num_slots - 1}] (fewer than the "
                f"slots; None for no limit). Received: {parameter_free_limit!r}."
            )
        if not 0 < tau_min <= tau_max:
            raise ValueError(f"Need 0 < tau_min <= tau_max. Received: {tau_min}, {tau_max}.")
        self.supernet = supernet
        self.trainer = trainer
        self.gumbel = method == "gdas"
        self.order = order
        self.max_parameter_free = max_parameter_free
        self.parameter_free_limit = parameter_free_limit
        self.tau_max, self.tau_min = tau_max, tau_min
        self.valid = supernet.candidate_mask()
        # Candidates without weights of their own (skip, pooling, none).
        self.parameter_free = np.zeros(self.valid.shape, dtype=bool)
        for s, per_slot in enumerate(supernet.candidate_kernels()):
            for k, kernels in enumerate(per_slot):
                self.parameter_free[s, k] = not kernels
        self._final: list[int] | None = None
        self.stopped_early: str | None = None
        init = np.random.default_rng(seed).normal(0, 1e-3, self.valid.shape).astype("float32")
        with trainer.scope():
            self.alpha = keras.Variable(init, name="alpha")
            self.optimizer = keras.optimizers.Adam(
                arch_learning_rate, beta_1=0.5, beta_2=0.999, weight_decay=arch_weight_decay
            )
            self.optimizer.build([self.alpha])
        self._mask = tf.constant((1.0 - self.valid) * -1e9)
        self._arch_step = tf.function(self._arch_step_fn, reduce_retracing=True)
        self.tau = tau_max

    # -- Weights of the candidates ------------------------------------------------
    def probabilities(self) -> np.ndarray:
        """softmax(alpha) per slot (zero for padding)."""
        return tf.nn.softmax(self.alpha + self._mask, axis=-1).numpy() * self.valid

    def argmax(self) -> list[int]:
        """The highest-weighted candidate of each slot."""
        return [int(i) for i in np.argmax(self.probabilities(), axis=-1)]

    def count_parameter_free(self, path: Sequence[int]) -> int:
        """Slots of `path` (candidate indices) whose candidate has no weights."""
        return int(sum(self.parameter_free[s, k] for s, k in enumerate(path)))

    def derive(self) -> list[int]:
        """The architecture: the argmax, within `parameter_free_limit` if one is set."""
        probs, chosen = self.probabilities(), self.argmax()
        if self.parameter_free_limit is None:
            return chosen
        free = [s for s, k in enumerate(chosen) if self.parameter_free[s, k]]
        weighted = (self.valid > 0) & ~self.parameter_free
        # The weakest parameter-free winners give way first; slots without a candidate
        # with weights cannot.
        movable = sorted((s for s in free if weighted[s].any()), key=lambda s: probs[s, chosen[s]])
        for s in movable[: max(len(free) - self.parameter_free_limit, 0)]:
            chosen[s] = int(np.argmax(np.where(weighted[s], probs[s], -1.0)))
        return chosen

    def _gumbel(self, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(1e-6, 1 - 1e-6, self.valid.shape)
        return (-np.log(-np.log(u))).astype("float32")

    def _mixture(self, alpha, noise, tau):
        """(weights, active) of a step, differentiable in alpha."""
        logits = alpha + self._mask
        if not self.gumbel:
            return tf.nn.softmax(logits, axis=-1), tf.constant(self.valid)
        soft = tf.nn.softmax((logits + noise) / tau, axis=-1)
        hard = tf.one_hot(tf.argmax(soft, axis=-1), self.valid.shape[1])
        return hard - tf.stop_gradient(soft) + soft, hard

    def sampler(self) -> Sampler:
        def sample(step, total, rng):
            weights, active = self._mixture(
                self.alpha, tf.constant(self._gumbel(rng)), tf.constant(self.tau, "float32")
            )
            return weights.numpy(), active.numpy()

        return sample

    # -- Architecture steps -----------------------------------------------------
    def _loss(self, x, y, weights, active):
        logits = self.supernet(x, weights, active, training=True)
        y = tf.reshape(y, [-1])  # Token sequences: one label per step, as the logits.
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    def _arch_step_fn(self, xv, yv, xt, yt, noise, tau, xi):
        alpha = self.alpha
        with tf.GradientTape() as tape:
            weights, active = self._mixture(alpha, noise, tau)
            loss = self._loss(xv, yv, weights, active)
        if self.order == 1:
            (grad,) = tape.gradient(loss, [alpha])
        else:
            grad = self._unrolled_gradient(xv, yv, xt, yt, xi)
        self.optimizer.apply([grad], [alpha])
        return loss

    def _unrolled_gradient(self, xv, yv, xt, yt, xi):
        """d L_val(w - xi * dL_train/dw, alpha) / d alpha, by finite differences."""
        variables = self.supernet.trainable_variables
        backup = [tf.identity(v) for v in variables]
        valid = tf.constant(self.valid)

        def grads(loss_of, targets):
            with tf.GradientTape() as tape:
                loss = loss_of()
            found = tape.gradient(loss, targets)
            return [
                tf.zeros_like(t) if g is None else g for g, t in zip(found, targets, strict=True)
            ]

        def train_loss():
            return self._loss(xt, yt, tf.nn.softmax(self.alpha + self._mask, -1), valid)

        def val_loss():
            return self._loss(xv, yv, tf.nn.softmax(self.alpha + self._mask, -1), valid)

        for v, g in zip(variables, grads(train_loss, variables), strict=True):
            v.assign_sub(xi * g)  # The virtual step w' = w - xi * dL_train/dw.
        found = grads(val_loss, [self.alpha, *variables])
        d_alpha, d_w = found[0], found[1:]
        eps = 0.01 / (tf.linalg.global_norm(d_w) + 1e-12)
        for v, b, g in zip(variables, backup, d_w, strict=True):
            v.assign(b + eps * g)
        (plus,) = grads(train_loss, [self.alpha])
        for v, b, g in zip(variables, backup, d_w, strict=True):
            v.assign(b - eps * g)
        (minus,) = grads(train_loss, [self.alpha])
        for v, b in zip(variables, backup, strict=True):
            v.assign(b)
        return d_alpha - xi * (plus - minus) / (2.0 * eps)

    # -- The search -------------------------------------------------------------
    def search(
        self,
        trainer: OneShotTrainer,
        train: tf.data.Dataset,
        validation: tf.data.Dataset,
        epochs: int,
        total: int,
        rng: np.random.Generator,
        progress: bool,
    ) -> list[dict[str, Any]]:
        """Weight steps and architecture steps in turn; returns one history dict per epoch.

        Args:
            trainer: The supernet's trainer.
            train: Training batches (weight steps; second order's virtual step).
            validation: Validation batches (architecture steps).
            epochs: Passes over `train`.
            total: Weight steps in all (for the learning-rate schedule).
            rng: Draws the Gumbel noise (GDAS).
            progress: Whether to log a line per epoch.
        """
        val_iter = iter(validation.repeat())
        history: list[dict[str, Any]] = []
        name = "gdas" if self.gumbel else "darts"
        previous: list[int] | None = None
        self.stopped_early: str | None = None
        train_batches = iter(train.repeat())

        def arch_step(step: int) -> None:
            xv, yv = next(val_iter)
            xt, yt = next(train_batches) if self.order == 2 else (xv, yv)
            lr = float(trainer.optimizer.learning_rate)
            self._arch_step(
                xv,
                yv,
                xt,
                yt,
                tf.constant(self._gumbel(rng)),
                tf.constant(self.tau, "float32"),
                tf.constant(lr, "float32"),
            )

        step = 0
        for epoch in range(epochs):
            start = time.perf_counter()
            if self.gumbel:  # GDAS anneals the temperature linearly over the epochs.
                self.tau = self.tau_max - (self.tau_max - self.tau_min) * epoch / max(epochs - 1, 1)
            step, loss, acc = trainer.train_epoch(
                train, self.sampler(), rng, step, total, between=arch_step
            )
            derived = self.derive()
            free = self.count_parameter_free(self.argmax())
            record = {
                "epoch": epoch + 1,
                "loss": loss,
                "accuracy": acc,
                "parameter_free": free,
                "architecture": self.supernet.values_of(derived),
                "time": time.perf_counter() - start,
            }
            history.append(record)
            log(
                progress,
                f"{name} epoch {epoch + 1}/{epochs} loss={loss:.4f} accuracy={acc:.4f} "
                f"parameter_free={free}/{self.supernet.num_slots} time={record['time']:.1f}s",
            )
            if self.max_parameter_free is not None and free >= self.max_parameter_free:
                self.stopped_early = (
                    f"epoch {epoch + 1}'s architecture has {free} parameter-free slots "
                    f"(max_parameter_free={self.max_parameter_free})"
                )
                log(progress, f"{name} stopped early: {self.stopped_early}")
                if previous is not None:
                    self._final = previous
                break
            previous = derived
        return history

    def ranking(self, rng: np.random.Generator, n: int) -> Ranked:
        """The derived architecture, then others drawn from softmax(alpha), by log-probability.

        Args:
            rng: The generator the others are drawn with.
            n: Architectures wanted (fewer when the draws keep repeating).
        """
        return rank_by_probability(
            self.supernet, self.probabilities(), self.valid, self._final or self.derive(), rng, n
        )
