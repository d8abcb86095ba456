"""What kerasnas tells its user: the `kerasnas` logger, and the progress and report lines.

Every module logs through `logging.getLogger(__name__)`, a child of the
`kerasnas` logger. That logger has a handler of its own (as Optuna's and
TensorFlow's do) that writes `[kerasnas] message` lines: INFO to the current
`sys.stdout`, warnings and errors to `sys.stderr`, so that a search shows its progress in a script,
a notebook or a terminal without any logging set-up. To route the messages
elsewhere, remove it (`kerasnas.report.disable_default_handler()`) and
configure `logging` as usual; `logging.getLogger("kerasnas").setLevel(...)`
changes what is shown. A `Search(verbose=0)` raises the level to WARNING
while it runs (`quiet()`), so it prints nothing but warnings.

The progress line of each trial and the table of the best trials are the
only output written with `print` (here, and in the CLI).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

LOGGER_NAME = "kerasnas"
logger = logging.getLogger(LOGGER_NAME)


class _StdoutHandler(logging.Handler):
    """Writes INFO records to the `sys.stdout` of the moment, warnings and errors to
    `sys.stderr` (looked up at each record: pytest and notebooks replace them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break a search.
            self.handleError(record)


_default_handler = _StdoutHandler()
_default_handler.setFormatter(logging.Formatter("[kerasnas] %(message)s"))


def enable_default_handler() -> None:
    """Shows kerasnas's INFO messages on stdout as `[kerasnas] ...` lines (the default)."""
    if _default_handler not in logger.handlers:
        logger.addHandler(_default_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.propagate = False


def disable_default_handler() -> None:
    """Removes kerasnas's own handler; its records then propagate to the root logger."""
    logger.removeHandler(_default_handler)
    logger.propagate = True


@contextlib.contextmanager
def quiet(silent: bool = True) -> Iterator[None]:
    """Within it, kerasnas logs warnings and errors only (when `silent`)."""
    if not silent:
        yield
        return
    previous = logger.level
    logger.setLevel(max(logging.WARNING, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)


def is_quiet() -> bool:
    """Whether INFO messages are hidden (e.g. inside `quiet()`)."""
    return not logger.isEnabledFor(logging.INFO)


def show(line: str = "") -> None:
    """Prints a line of a report (a trial's progress line, a table), unless quiet."""
    if not is_quiet():
        print(line, flush=True)


enable_default_handler()


def progress_line(runner: Any, trial: Any) -> str:
    """The line logged when a trial ends: its score, the best so far, size, times.

    Args:
        runner: The trial runner (`kerasnas.training.runner.NasTuner`).
        trial: The ended `keras_tuner` trial.
    """
    objective = runner.oracle.objective
    number = int(trial.trial_id) + 1
    elapsed = runner.time_used() - runner._time_before
    head = f"trial {number}/{runner.oracle.max_trials} arch={runner.network_hash(trial)[:8]}"
    head += runner.strategy_hook("progress_note", trial) or ""
    if trial.status != "COMPLETED":
        reason = (trial.message or "").strip().splitlines()
        return f"{head} {trial.status}: {reason[-1] if reason else ''} elapsed={elapsed:.1f}s"
    best = runner.oracle.get_best_trials(1)
    best_score = best[0].score if best else float("nan")
    metrics = trial.metrics
    params = metrics.get_last_value("params") if metrics.exists("params") else 0
    seconds = metrics.get_last_value("train_time")
    budget = ""
    if runner.time_budget is not None:
        budget = f" budget_left={max(runner.time_budget - runner.time_used(), 0.0):.0f}s"
    return (
        f"{head} {objective.name}={trial.score:.4f} best={best_score:.4f} "
        f"params={int(params):,} time={seconds:.1f}s elapsed={elapsed:.1f}s{budget}"
    )
