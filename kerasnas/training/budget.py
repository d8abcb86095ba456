"""The time budget of a search: its checks, and when no further trial may start."""

from __future__ import annotations

import numbers
from typing import Any

# The trial metric of a trial's build-and-train seconds (`kerasnas.training.TRAIN_TIME`).
TRAIN_TIME = "train_time"


def _check_seconds(name: str, value: Any, allow_none: bool) -> None:
    """Raises ValueError unless `value` is a number of seconds (or None, if allowed)."""
    if (value is None and allow_none) or (
        isinstance(value, numbers.Real) and not isinstance(value, bool)
    ):
        return
    expected = "a number of seconds (an int or a float)" + (", or None" if allow_none else "")
    hint = ""
    if isinstance(value, str):
        try:
            hint = f"; pass {name}={float(value):g}"
        except ValueError:
            pass
    raise ValueError(
        f"{name} must be {expected}. Received: {name}={value!r}, a {type(value).__name__}{hint}."
    )


def check_time_budget(time_budget: float | None, reserve: float) -> None:
    """Raises ValueError unless `time_budget` (None or > 0) and `reserve` (>= 0, below it) fit."""
    _check_seconds("time_budget", time_budget, allow_none=True)
    _check_seconds("reserve", reserve, allow_none=False)
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be > 0 seconds. Received: {time_budget!r}.")
    if not reserve >= 0 or (time_budget is not None and reserve >= time_budget):
        raise ValueError(
            f"reserve must be >= 0 and less than time_budget. Received: reserve={reserve!r}, "
            f"time_budget={time_budget!r}."
        )


def budget_stop_reason(used: float, next_trial: float, reserve: float, budget: float) -> str | None:
    """Why no further trial may start under a time budget, or None when one fits.

    Args:
        used: Seconds of the budget used so far.
        next_trial: Estimated seconds of the next trial (the longest finished
            one; 0 before any has finished, when a trial starts if any time
            is left).
        reserve: Seconds kept free at the end.
        budget: The budget in seconds.
    """
    if used + next_trial + reserve <= budget and used + reserve < budget:
        return None
    return (
        f"the time budget would be exceeded: {used:.0f} s used of time_budget={budget:g} s, "
        f"the next trial needs about {next_trial:.0f} s and {reserve:g} s are reserved"
    )


def trial_times(oracle: Any) -> list[float]:
    """The train time (seconds) of every trial of `oracle` that recorded one."""
    return [
        t.metrics.get_last_value(TRAIN_TIME) or 0.0
        for t in oracle.trials.values()
        if t.metrics.exists(TRAIN_TIME)
    ]


def search_stop_reason(
    times: list[float],
    used: float,
    max_time: float | None,
    budget: float | None,
    reserve: float,
    next_trial: float | None = None,
) -> str | None:
    """Why a search may start no further trial, or None.

    Args:
        times: The finished trials' train times.
        used: Seconds of the budget used so far.
        max_time: A tabular benchmark's simulated budget: the trials' summed
            (looked-up) train times may not exceed it. None for none.
        budget: The search's `time_budget`, or None.
        reserve: Seconds of the budget kept free.
        next_trial: The seconds the next trial needs. Defaults to the longest
            finished trial's.
    """
    if max_time is not None and sum(times) >= max_time:
        return f"the simulated time budget is spent ({sum(times):.0f} s of max_time={max_time:g} s)"
    if budget is not None:
        if next_trial is None:
            next_trial = max(times, default=0.0)
        return budget_stop_reason(used, next_trial, reserve, budget)
    return None
