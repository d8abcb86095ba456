"""Uniform one-shot (Bender et al., ICML 2018): every candidate trained, with path dropout."""

from __future__ import annotations

import dataclasses

from kerasnas.oneshot.common import (
    Context,
    Method,
    Trained,
    bad_option,
    check_ghost_batch_size,
    is_number,
    train_shared,
)
from kerasnas.oneshot.train import path_dropout


@dataclasses.dataclass
class UniformOptions:
    """Options of the `"uniform"` method (see `kerasnas.oneshot.train.path_dropout`).

    Args:
        drop_max: The final path-dropout rate, in [0, 1). Defaults to 0.5.
        ramp: Share of training over which the rate grows to `drop_max`, in
            (0, 1]. Defaults to 1.
        ghost_batch_size: Examples per ghost batch of the BatchNorm layers
            (None: the whole batch). Defaults to 32.
    """

    drop_max: float = 0.5
    ramp: float = 1.0
    ghost_batch_size: int | None = 32

    def __post_init__(self) -> None:
        if not (is_number(self.drop_max) and 0.0 <= self.drop_max < 1.0):
            raise bad_option("drop_max", self.drop_max, "a number in [0, 1)")
        if not (is_number(self.ramp) and 0.0 < self.ramp <= 1.0):
            raise bad_option("ramp", self.ramp, "a number in (0, 1]")
        check_ghost_batch_size(self.ghost_batch_size)


def train(context: Context, options: UniformOptions) -> Trained:
    """Trains the shared weights with path dropout; ranks candidates by one-shot score.

    Args:
        context: The run's context.
        options: The method's options.
    """
    sampler = path_dropout(context.supernet, options.drop_max, options.ramp)
    return train_shared(context, sampler, "uniform")


# Adam at 2e-3, batch 32: what ranked architectures in benchmarks/ranking.py.
METHOD = Method(
    "uniform", UniformOptions, train, takes_candidates=True, optimizer="adam", batch_size=32
)
