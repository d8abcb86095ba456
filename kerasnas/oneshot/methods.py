"""One-shot search methods: uniform sampling (Bender et al.), SPOS, ENAS, DARTS and GDAS.

Each method trains a supernet's shared weights on the training data and
returns a ranking of architectures (`OneShotResult`): the candidates it
would train, best first. `run` dispatches on the method's name to its module
(`kerasnas.oneshot.uniform`, `.spos`, `.enas`, `.darts`, `.gdas`), which
defines its options (a dataclass) and its training.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerasnas.architecture import Scalar
from kerasnas.oneshot import darts, enas, gdas, spos, uniform
from kerasnas.oneshot.common import (
    Context,
    Method,
    OneShotResult,
    build_supernet,
    log,
    supernet_class,
)
from kerasnas.oneshot.darts import Darts, DartsOptions
from kerasnas.oneshot.enas import EnasOptions
from kerasnas.oneshot.gdas import GdasOptions
from kerasnas.oneshot.spos import SposOptions
from kerasnas.oneshot.supernet import Supernet
from kerasnas.oneshot.train import (
    LEARNING_RATES,
    OneShotTrainer,
    check_optimizer,
    check_rank_by,
    rebatch,
    sparse_labels,
)
from kerasnas.oneshot.uniform import UniformOptions

#: A supernet trains on at least this many examples by default (`run`'s `epochs`).
SUPERNET_EXAMPLES = 300_000
#: And for at least this many passes over the training data.
MIN_SUPERNET_EPOCHS = 10
#: The methods by name, in the order the documentation presents them.
METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (uniform, spos, enas, darts, gdas)}

__all__ = [
    "METHODS",
    "MIN_SUPERNET_EPOCHS",
    "SUPERNET_EXAMPLES",
    "Darts",
    "DartsOptions",
    "EnasOptions",
    "GdasOptions",
    "Method",
    "OneShotResult",
    "SposOptions",
    "UniformOptions",
    "build_supernet",
    "parse_options",
    "run",
    "supernet_class",
]


def parse_options(method: str, options: Mapping[str, Any]) -> Any:
    """The options dataclass of a method, e.g. `parse_options("darts", {"order": 2})`.

    Checks options before any work is done (`run` checks them too).

    Args:
        method: One of `METHODS`.
        options: Option names and values.

    Raises:
        ValueError: for an unknown method, an option the method does not take,
            or a bad value.
    """
    return _method(method).parse_options(options)


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown one-shot method {name!r}. Choose one of {list(METHODS)}.")
    return METHODS[name]


def run(
    method: str,
    supernet: Supernet,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    learning_rate: float | None = None,
    weight_decay: float = 3e-4,
    num_candidates: int = 100,
    calibration_batches: int = 10,
    distribution_strategy: Any = None,
    progress: bool = True,
    candidates: Sequence[Mapping[str, Scalar]] | None = None,
    optimizer: str | None = None,
    rank_by: str = "loss",
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
        epochs: Passes over `train`. Defaults to enough passes for
            about `SUPERNET_EXAMPLES` (300,000) examples, at least
            `MIN_SUPERNET_EPOCHS` (10): a supernet needs many weight steps to
            rank (`benchmarks/ranking.py`: Kendall tau 0.25 after 60,000
            examples, 0.42 after 300,000).
        batch_size: Batch size of the supernet's weight steps. Defaults to the
            method's: 32 for uniform and SPOS, 64 for the others.
        seed: Seed of the paths drawn.
        learning_rate: Initial learning rate of the shared weights. Defaults
            to the optimizer's: 2e-3 for Adam, 0.05 for SGD.
        weight_decay: L2 coefficient on the active kernels.
        num_candidates: Architectures ranked at the end. Defaults to 100.
        calibration_batches: Training batches that recompute a candidate's
            BatchNorm statistics before it is scored. Defaults to 10.
        distribution_strategy: Optional `tf.distribute.Strategy` for the
            weight steps (the supernet must be built in its scope).
        progress: Log a line per epoch (INFO, on the `kerasnas` logger).
        candidates: Architectures (decision values) to rank instead of
            drawing `num_candidates` (uniform and SPOS).
        optimizer: Of the shared weights: `"sgd"` (Nesterov momentum) or
            `"adam"`; see `OneShotTrainer`. Defaults to the method's: Adam
            for uniform and SPOS, SGD (as their papers) for the others.
        rank_by: What uniform, SPOS and ENAS rank candidates by, each path's
            BatchNorm statistics recomputed: `"loss"` (minus the validation
            cross-entropy, the default) or `"accuracy"`.
        **options: The method's options, the fields of its dataclass:
            `UniformOptions` (`drop_max`, `ramp`, `ghost_batch_size`),
            `SposOptions` (`fair`: FairNAS's strict fairness, every candidate
            trained equally often; `ghost_batch_size`), `EnasOptions`
            (`controller_steps`, `controller_batch`, `entropy_weight`,
            `algorithm`), `DartsOptions` (`order`, `arch_learning_rate`,
            `arch_weight_decay`, `max_parameter_free`, `parameter_free_limit`),
            `GdasOptions` (`arch_learning_rate`, `arch_weight_decay`,
            `parameter_free_limit`, `tau_max`, `tau_min`).

    Returns:
        A `OneShotResult`.

    Raises:
        ValueError: for an unknown method, an option the method does not
            take, or a bad argument or option value.
    """
    spec = _method(method)
    check_rank_by(rank_by)
    optimizer = optimizer or spec.optimizer
    check_optimizer(optimizer)
    batch_size = batch_size or spec.batch_size
    learning_rate = LEARNING_RATES[optimizer] if learning_rate is None else learning_rate
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an integer >= 1 (or None). Received: {epochs!r}.")
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be >= 1. Received: {num_candidates}.")
    if candidates is not None and not spec.takes_candidates:
        raise ValueError(
            f"candidates= applies to the 'uniform' and 'spos' methods; {method!r} draws its "
            "own candidates. Score given architectures with rank_paths() on its trainer."
        )
    parsed = spec.parse_options(options)
    train = rebatch(sparse_labels(train), batch_size, drop_remainder=True)
    validation = sparse_labels(validation)
    steps_per_epoch = sum(1 for _ in train)
    if steps_per_epoch == 0:
        raise ValueError(
            f"The training data holds fewer examples than one batch of {batch_size}; "
            "lower the one-shot batch_size."
        )
    ghost = getattr(parsed, "ghost_batch_size", None)
    if ghost is not None:
        replicas = distribution_strategy.num_replicas_in_sync if distribution_strategy else 1
        if (batch_size // replicas) % ghost:
            raise ValueError(
                f"ghost_batch_size={ghost} must divide the per-replica batch size "
                f"{batch_size // replicas}."
            )
    supernet.set_virtual_batch_size(ghost)
    if epochs is None:
        passes = round(SUPERNET_EXAMPLES / (steps_per_epoch * batch_size))
        epochs = max(MIN_SUPERNET_EPOCHS, passes)
    settings = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                "learning_rate": learning_rate}  # fmt: skip
    log(progress, f"{method} supernet: {epochs} epochs of {steps_per_epoch} steps, batch "
                  f"{batch_size}, {optimizer} from learning rate {learning_rate:g}")  # fmt: skip
    total = steps_per_epoch * epochs
    trainer = OneShotTrainer(
        supernet,
        total,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        distribution_strategy=distribution_strategy,
        optimizer=optimizer,
    )
    context = Context(
        supernet=supernet,
        trainer=trainer,
        train=train,
        validation=validation,
        epochs=epochs,
        total=total,
        rng=np.random.default_rng(seed),
        seed=seed,
        progress=progress,
        num_candidates=num_candidates,
        calibration_batches=calibration_batches,
        candidates=candidates,
        distribution_strategy=distribution_strategy,
        rank_by=rank_by,
    )
    start = time.perf_counter()
    trained = spec.train(context, parsed)
    train_time = time.perf_counter() - start
    ranked = trained.rank()
    rank_time = time.perf_counter() - start - train_time
    return OneShotResult(
        method=method,
        ranking=[supernet.values_of(p) for p, _ in ranked],
        scores=[s for _, s in ranked],
        history=trained.history,
        train_time=train_time,
        rank_time=rank_time,
        supernet=supernet,
        trainer=trainer,
        calibration=train,
        settings=settings,
    )
