"""What the trial runner measures: the best epoch's metrics, latency, training speed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np


def best_epoch_metrics(histories: Sequence[keras.callbacks.History], objective: Any) -> dict:
    """The metrics of each history's best epoch by `objective`, averaged over the histories.

    (What keras-tuner reports for a trial; several histories come from
    `executions_per_trial > 1`.)
    """
    chosen = []
    for history in histories:
        epochs = max((len(v) for v in history.history.values()), default=0)
        per_epoch = [
            {name: values[e] for name, values in history.history.items() if e < len(values)}
            for e in range(epochs)
        ]
        best: dict | None = None
        for metrics in per_epoch:
            value = objective.get_value(metrics)
            metrics.setdefault(objective.name, value)
            if best is None or objective.better_than(value, best[objective.name]):
                best = metrics
        chosen.append(best or {})
    names = {name for metrics in chosen for name in metrics}
    return {name: float(np.mean([m[name] for m in chosen if name in m])) for name in sorted(names)}


def trial_metrics(
    histories: Sequence[keras.callbacks.History],
    objective: Any,
    params: int,
    model: keras.Model | None,
    names: tuple[str, str],
) -> dict:
    """A trial's metrics: the best epoch's, with the parameter count and, when `model` is
    given, its latency (constant over epochs, so that they can be objectives themselves,
    e.g. minimise `params`). `names` are the names of those two metrics."""
    measured = {names[0]: float(params)}
    if model is not None:
        measured[names[1]] = latency_ms(model)
    for history in histories:
        epochs = len(history.history.get("loss", [])) or 1
        for name, value in measured.items():
            history.history[name] = [value] * epochs
    return best_epoch_metrics(histories, objective)


def latency_ms(model: keras.Model, repeats: int = 20) -> float:
    """Median milliseconds of one inference on a single example."""
    x = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    model(x, training=False)  # Warm-up (tracing).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x, training=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


class _StepTimes(keras.callbacks.Callback):
    """Records when each training step ends."""

    def __init__(self) -> None:
        super().__init__()
        self.begin = 0.0
        self.ends: list[float] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())


def measure_step_seconds(model: keras.Model, dataset: Any, steps: int = 20) -> tuple[float, float]:
    """Seconds per training step of a compiled `model` on a batched `dataset`, and of its first.

    Trains `model` (a throwaway: its weights change) on `steps` + 5 batches
    (the dataset repeated when it has fewer); the first step (tracing) and
    the next 4 (warming up) are left out of the per-step figure.
    """
    timer = _StepTimes()
    model.fit(dataset.repeat().take(steps + 5), epochs=1, verbose=0, shuffle=False,
              callbacks=[timer])  # fmt: skip
    ends = timer.ends
    first = ends[0] - timer.begin
    return (ends[-1] - ends[5]) / (len(ends) - 6), first


def steps_per_epoch(dataset: Any) -> int:
    """Batches in one pass over a batched dataset (counted when its length is unknown)."""
    n = int(dataset.cardinality())
    if n >= 0:
        return n
    return sum(1 for _ in dataset)
