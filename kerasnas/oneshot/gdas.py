"""GDAS (Dong & Yang, CVPR 2019): DARTS with one candidate per slot by hard Gumbel-softmax."""

from __future__ import annotations

import dataclasses

from kerasnas.oneshot.common import (
    Context,
    Method,
    Trained,
    bad_option,
    check_slot_count,
    is_number,
)
from kerasnas.oneshot.darts import check_arch_options, run_darts


@dataclasses.dataclass
class GdasOptions:
    """Options of the `"gdas"` method (see `kerasnas.oneshot.darts.Darts`).

    Args:
        arch_learning_rate: Adam learning rate of alpha. Defaults to 3e-4.
        arch_weight_decay: Weight decay of alpha. Defaults to 1e-3.
        parameter_free_limit: Derives at most this many parameter-free slots
            (None, the default: no limit).
        tau_max: The Gumbel-softmax temperature of the first epoch. Defaults to 10.
        tau_min: That of the last epoch (it falls linearly). Defaults to 0.1.
    """

    arch_learning_rate: float = 3e-4
    arch_weight_decay: float = 1e-3
    parameter_free_limit: int | None = None
    tau_max: float = 10.0
    tau_min: float = 0.1

    def __post_init__(self) -> None:
        check_arch_options(self.arch_learning_rate, self.arch_weight_decay)
        check_slot_count("parameter_free_limit", self.parameter_free_limit, 0)
        if not (is_number(self.tau_min) and self.tau_min > 0):
            raise bad_option("tau_min", self.tau_min, "a positive number")
        if not (is_number(self.tau_max) and self.tau_max >= self.tau_min):
            raise bad_option("tau_max", self.tau_max, f"a number >= tau_min ({self.tau_min})")


def train(context: Context, options: GdasOptions) -> Trained:
    """Trains the shared weights and alpha in turn; ranks by log-probability under alpha.

    Args:
        context: The run's context.
        options: The method's options.
    """
    return run_darts(context, "gdas", dataclasses.asdict(options))


METHOD = Method("gdas", GdasOptions, train)
