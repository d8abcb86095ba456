"""Single path one-shot (SPOS, Guo et al., ECCV 2020), optionally with FairNAS's fairness."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasnas.oneshot.common import (
    Context,
    Method,
    Trained,
    bad_option,
    check_ghost_batch_size,
    train_shared,
)
from kerasnas.oneshot.train import single_path


@dataclasses.dataclass
class SposOptions:
    """Options of the `"spos"` method (see `kerasnas.oneshot.train.single_path`).

    Args:
        fair: FairNAS's strict fairness (Chu et al. 2019): every candidate is
            trained equally often. Defaults to False.
        ghost_batch_size: Examples per ghost batch of the BatchNorm layers
            (None, the default: the whole batch).
    """

    fair: bool = False
    ghost_batch_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fair, bool | np.bool_):
            raise bad_option("fair", self.fair, "True or False")
        check_ghost_batch_size(self.ghost_batch_size)


def train(context: Context, options: SposOptions) -> Trained:
    """Trains the shared weights on one uniform path per step; ranks by one-shot score.

    Args:
        context: The run's context.
        options: The method's options.
    """
    sampler = single_path(context.supernet, fair=bool(options.fair))
    return train_shared(context, sampler, "spos")


# Adam at 2e-3, batch 32: what ranked architectures in benchmarks/ranking.py.
METHOD = Method("spos", SposOptions, train, takes_candidates=True, optimizer="adam", batch_size=32)
