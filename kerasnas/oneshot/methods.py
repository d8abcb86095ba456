"""One-shot search methods: uniform sampling (Bender et al.), SPOS, ENAS, DARTS and GDAS.

Each method trains a supernet's shared weights on the training data and
returns a ranking of architectures (`OneShotResult`): the candidates it
would train, best first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnas.architecture import Scalar
from kerasnas.oneshot.nasbench201 import NASBench201Supernet
from kerasnas.oneshot.supernet import Supernet
from kerasnas.oneshot.train import (
    OneShotTrainer,
    Sampler,
    path_dropout,
    rank_paths,
    rebatch,
    single_path,
    sparse_labels,
)
from kerasnas.spaces.base import SearchSpace
from kerasnas.spaces.nasbench201 import NASBench201Space

METHODS = ("uniform", "spos", "enas", "darts", "gdas")


@dataclasses.dataclass
class OneShotResult:
    """What a one-shot search found.

    Args:
        method: The method's name.
        ranking: Decision values of the candidates, best first.
        scores: Each candidate's score: one-shot validation accuracy
            (uniform, SPOS, ENAS) or log-probability under the learnt
            architecture weights (DARTS, GDAS).
        history: One dict per supernet epoch (loss, accuracy, time, ...).
        train_time: Seconds spent training the supernet (and controller or
            architecture weights).
        rank_time: Seconds spent scoring candidates.
        supernet: The trained supernet.
        trainer: Its `OneShotTrainer` (to calibrate and score more paths).
        calibration: The training batches that calibrate a path's BatchNorm.
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


def supernet_class(space: SearchSpace) -> Callable[..., Supernet]:
    """The supernet class of a space.

    Raises:
        ValueError: for a space without a supernet.
    """
    from kerasnas.oneshot.nasnet import NASNetSupernet
    from kerasnas.spaces.nasnet import NASNetSpace

    builders: dict[type, Callable[..., Supernet]] = {
        NASBench201Space: NASBench201Supernet,
        NASNetSpace: NASNetSupernet,
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

    Raises:
        ValueError: for a space without a supernet.
    """
    builder = supernet_class(space)
    scope = distribution_strategy.scope() if distribution_strategy is not None else _null()
    with scope:
        return builder(space, **kwargs)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _log(progress: bool, text: str) -> None:
    if progress:
        print(f"[kerasnas] {text}", flush=True)


def _distinct_candidates(
    supernet: Supernet, draw: Callable[[], list[int]], n: int, tries: int = 50
) -> list[list[int]]:
    """Up to `n` paths from `draw()` whose architectures are pairwise non-isomorphic."""
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


def run(
    method: str,
    supernet: Supernet,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    learning_rate: float = 0.05,
    weight_decay: float = 3e-4,
    num_candidates: int = 100,
    calibration_batches: int = 10,
    distribution_strategy: Any = None,
    progress: bool = True,
    candidates: Sequence[Mapping[str, Scalar]] | None = None,
    optimizer: str = "sgd",
    **options: Any,
) -> OneShotResult:
    """Runs a one-shot search method on a supernet.

    Args:
        method: One of `METHODS`.
        supernet: The supernet (from `build_supernet`).
        train: Batched `(x, y)` training dataset (shared weights; ENAS's
            controller and DARTS's architecture weights learn on
            `validation`).
        validation: Batched `(x, y)` validation dataset.
        epochs: Passes over `train`. Defaults to 10.
        batch_size: Batch size of the supernet's weight steps. Defaults to 64.
        seed: Seed of the paths drawn.
        learning_rate: Initial learning rate of the shared weights.
        weight_decay: L2 coefficient on the active kernels.
        num_candidates: Architectures ranked at the end. Defaults to 100.
        calibration_batches: Training batches that recompute a candidate's
            BatchNorm statistics before it is scored. Defaults to 10.
        distribution_strategy: Optional `tf.distribute.Strategy` for the
            weight steps (the supernet must be built in its scope).
        progress: Print a line per epoch.
        candidates: Architectures (decision values) to rank instead of
            drawing `num_candidates` (uniform and SPOS).
        optimizer: Of the shared weights: `"sgd"` (Nesterov momentum) or
            `"adam"`; see `OneShotTrainer`.
        **options: Method options: `drop_max`, `ramp`, `ghost_batch_size`
            (uniform); `fair` (SPOS with FairNAS's strict fairness: every
            candidate trained equally often); `controller_steps`, `controller_batch`,
            `entropy_weight`, `algorithm` (ENAS); `order`,
            `arch_learning_rate`, `arch_weight_decay`, `max_parameter_free`,
            `parameter_free_limit` (DARTS, GDAS), `tau_max`, `tau_min` (GDAS).

    Returns:
        A `OneShotResult`.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown one-shot method {method!r}. Choose one of {list(METHODS)}.")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1. Received: {epochs!r}.")
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be >= 1. Received: {num_candidates}.")
    allowed = {
        "uniform": {"drop_max", "ramp", "ghost_batch_size"},
        "spos": {"ghost_batch_size", "fair"},
        "enas": {"controller_steps", "controller_batch", "entropy_weight", "algorithm"},
        "darts": {
            "order",
            "arch_learning_rate",
            "arch_weight_decay",
            "max_parameter_free",
            "parameter_free_limit",
        },
        "gdas": {
            "arch_learning_rate",
            "arch_weight_decay",
            "parameter_free_limit",
            "tau_max",
            "tau_min",
        },
    }[method]
    if candidates is not None and method not in ("uniform", "spos"):
        raise ValueError(
            f"candidates= applies to the 'uniform' and 'spos' methods; {method!r} draws its "
            "own candidates. Score given architectures with rank_paths() on its trainer."
        )
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"Options {unknown} do not apply to the {method!r} method; it takes {sorted(allowed)}."
        )
    train = rebatch(sparse_labels(train), batch_size, drop_remainder=True)
    validation = sparse_labels(validation)
    steps_per_epoch = sum(1 for _ in train)
    if steps_per_epoch == 0:
        raise ValueError(
            f"The training data holds fewer examples than one batch of {batch_size}; "
            "lower the one-shot batch_size."
        )
    ghost = options.pop("ghost_batch_size", 32 if method == "uniform" else None)
    if ghost is not None:
        replicas = distribution_strategy.num_replicas_in_sync if distribution_strategy else 1
        if (batch_size // replicas) % ghost:
            raise ValueError(
                f"ghost_batch_size={ghost} must divide the per-replica batch size "
                f"{batch_size // replicas}."
            )
    supernet.set_virtual_batch_size(ghost)
    total = steps_per_epoch * epochs
    trainer = OneShotTrainer(
        supernet,
        total,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        distribution_strategy=distribution_strategy,
        optimizer=optimizer,
    )
    rng = np.random.default_rng(seed)
    common = dict(
        trainer=trainer,
        train=train,
        validation=validation,
        epochs=epochs,
        total=total,
        rng=rng,
        progress=progress,
    )
    start = time.perf_counter()
    if method in ("uniform", "spos"):
        if method == "uniform":
            sampler = path_dropout(supernet, options.get("drop_max", 0.5), options.get("ramp", 1.0))
        else:
            sampler = single_path(supernet, fair=bool(options.get("fair", False)))
        history = _train_shared(sampler=sampler, name=method, **common)
        train_time = time.perf_counter() - start
        if candidates is not None:
            paths = [supernet.indices(v) for v in candidates]
        else:
            paths = _distinct_candidates(
                supernet, lambda: supernet.sample_indices(rng), num_candidates
            )
        ranked = _rank(trainer, paths, train, validation, calibration_batches, progress)
    elif method == "enas":
        policy, history = _train_enas(options=options, seed=seed, **common)
        train_time = time.perf_counter() - start
        paths = _distinct_candidates(
            supernet, lambda: supernet.indices(policy.sample_values(rng)), num_candidates
        )
        ranked = _rank(trainer, paths, train, validation, calibration_batches, progress)
    else:
        if method == "darts" and options.get("order", 1) == 2 and distribution_strategy:
            raise ValueError(
                "Second-order DARTS runs on one device; use order=1 under a distribution strategy."
            )
        darts = Darts(supernet, trainer, method, seed=seed, **options)
        history = darts.search(**common)
        train_time = time.perf_counter() - start
        ranked = darts.ranking(rng, num_candidates)
    rank_time = time.perf_counter() - start - train_time
    return OneShotResult(
        method=method,
        ranking=[supernet.values_of(p) for p, _ in ranked],
        scores=[s for _, s in ranked],
        history=history,
        train_time=train_time,
        rank_time=rank_time,
        supernet=supernet,
        trainer=trainer,
        calibration=train,
    )


def _rank(trainer, paths, calibration, validation, calibration_batches, progress):
    scores = rank_paths(trainer, paths, calibration, validation, calibration_batches, progress)
    order = np.argsort(-np.asarray(scores), kind="stable")
    return [(paths[i], float(scores[i])) for i in order]


def _train_shared(
    trainer, train, validation, epochs, total, rng, progress, sampler: Sampler, name: str
):
    history, step = [], 0
    for epoch in range(epochs):
        start = time.perf_counter()
        step, loss, acc = trainer.train_epoch(train, sampler, rng, step, total)
        record = {"epoch": epoch + 1, "loss": loss, "accuracy": acc}
        record["time"] = time.perf_counter() - start
        history.append(record)
        _log(
            progress,
            f"{name} supernet epoch {epoch + 1}/{epochs} loss={loss:.4f} "
            f"accuracy={acc:.4f} time={record['time']:.1f}s",
        )
    return history


# -- ENAS ------------------------------------------------------------------------
def _train_enas(trainer, train, validation, epochs, total, rng, progress, options, seed):
    """ENAS (Pham et al. 2018): shared weights and the controller, trained in turn.

    Each epoch trains the shared weights for one pass over `train`, each step
    on a path the controller samples, then trains the controller for
    `controller_steps` samples whose reward is the path's accuracy on a
    validation batch (BatchNorm on the batch's statistics, as in ENAS).
    """
    from kerasnas.oracles.controller import ControllerOracle

    supernet = trainer.supernet
    policy = ControllerOracle(
        supernet.space,
        algorithm=options.get("algorithm", "reinforce"),
        batch_size=options.get("controller_batch", 10),
        entropy_weight=options.get("entropy_weight", 1e-4),
        temperature=5.0,
        tanh_constant=2.5,
        learning_rate=3.5e-3,
        seed=seed,
    )
    controller_steps = options.get("controller_steps", 50)

    def sampler(step, total, rng):
        path = supernet.path(policy.sample_values(rng))
        return path, path

    val_batches = list(validation.repeat().take(controller_steps * epochs).as_numpy_iterator())
    history, step = [], 0
    for epoch in range(epochs):
        start = time.perf_counter()
        step, loss, acc = trainer.train_epoch(train, sampler, rng, step, total)
        rewards = []
        for i in range(controller_steps):
            x, y = val_batches[epoch * controller_steps + i]
            choices, logp = policy.controller.sample(rng)
            path = supernet.path(policy.choice_values(choices))
            logits = trainer.logits(x, path, training=True)
            reward = float(np.mean(np.argmax(logits.numpy(), -1) == y))
            policy.observe(choices, logp, reward)
            rewards.append(reward)
        record = {
            "epoch": epoch + 1,
            "loss": loss,
            "accuracy": acc,
            "reward": float(np.mean(rewards)),
            "time": time.perf_counter() - start,
        }
        history.append(record)
        _log(
            progress,
            f"enas epoch {epoch + 1}/{epochs} loss={loss:.4f} accuracy={acc:.4f} "
            f"controller_reward={record['reward']:.4f} time={record['time']:.1f}s",
        )
    return policy, history


# -- DARTS and GDAS ----------------------------------------------------------------
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
        self, trainer, train, validation, epochs, total, rng, progress
    ) -> list[dict[str, Any]]:
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
            _log(
                progress,
                f"{name} epoch {epoch + 1}/{epochs} loss={loss:.4f} accuracy={acc:.4f} "
                f"parameter_free={free}/{self.supernet.num_slots} time={record['time']:.1f}s",
            )
            if self.max_parameter_free is not None and free >= self.max_parameter_free:
                self.stopped_early = (
                    f"epoch {epoch + 1}'s architecture has {free} parameter-free slots "
                    f"(max_parameter_free={self.max_parameter_free})"
                )
                _log(progress, f"{name} stopped early: {self.stopped_early}")
                if previous is not None:
                    self._final = previous
                break
            previous = derived
        return history

    def ranking(self, rng: np.random.Generator, n: int) -> list[tuple[list[int], float]]:
        """The derived architecture, then others drawn from softmax(alpha), by log-probability."""
        probs = self.probabilities()
        final = self._final or self.derive()
        log_p = np.log(np.where(self.valid > 0, probs, 1.0) + 1e-12)

        def draw() -> list[int]:
            return [int(rng.choice(len(p), p=p / p.sum())) for p in probs]

        others = _distinct_candidates(self.supernet, draw, n)
        key = self.supernet.space.decode(self.supernet.values_of(final)).hash()
        others = [
            p
            for p in others
            if self.supernet.space.decode(self.supernet.values_of(p)).hash() != key
        ]
        scored = [(p, float(sum(log_p[s, k] for s, k in enumerate(p)))) for p in others]
        scored.sort(key=lambda item: -item[1])
        first = (final, float(sum(log_p[s, k] for s, k in enumerate(final))))
        return [first, *scored[: n - 1]]
