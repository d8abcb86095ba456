"""Pacing a training to a deadline: how many epochs fit, re-planned after each epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

log = logging.getLogger(__name__)


def epochs_within(seconds: float, step_seconds: float, steps: int, first_step: float) -> int:
    """Epochs of `steps` steps that fit in `seconds` (10 % margin, plus the first step's
    tracing once), at least 1.

    The margin covers what a few measured steps miss: on a busy CPU whole
    epochs ran about 7 % slower than 25 measured steps of a 60,000-image
    Fashion-MNIST training (shuffling and augmentation work that the
    pipeline had prefetched while the first step traced)."""
    per_epoch = step_seconds * steps * 1.10
    return max(1, int((seconds - first_step) // per_epoch))


class _Pacer(keras.callbacks.Callback):
    """Keeps a training's epochs within a deadline, re-planning them as it goes.

    After each epoch it projects, from the last few epochs' times, how many
    epochs fit before `deadline` (2 % margin, and the retracing a re-plan
    costs); when that is fewer than planned (then cut with a 5 % margin), or
    at least 2 (and 5 %) more,
    it ends this `fit()` with the new count in `replan` for `fit_within` to
    carry on with (it grows the plan only in its first quarter, while a
    re-laid schedule's learning rate is still near its peak). The first
    epoch of each `fit()` also traces the training step: its first step's
    extra time (over the epoch's other steps) is left out of its time and
    counted, with the pause between the two `fit()` calls, as what a re-plan
    costs. Within an epoch after the first it stops training once the
    deadline has passed: a last resort, as the epochs are planned to end
    before it.
    """

    def __init__(self, deadline: float, epochs: int, clock: Callable[[], float]):
        super().__init__()
        self.deadline, self.epochs, self.clock = deadline, epochs, clock
        self.done = 0  # Epochs completed.
        self.replan: int | None = None
        self.overran = False
        self.times: list[float] = []  # Each epoch's seconds, tracing left out.
        self.replan_cost = 0.0  # Seconds: the pause between two fit() calls and retracing.
        self._epoch_began = self._step_began = self._epoch_ended = 0.0
        self._pause = 0.0
        self._steps: list[float] = []
        self._first_of_fit = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.replan, self._first_of_fit = None, True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_began, self._steps = self.clock(), []
        if self._first_of_fit and self._epoch_ended:
            self._pause = self._epoch_began - self._epoch_ended

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._step_began = self.clock()
        if self._step_began > self.deadline and self.done:  # The first epoch is always whole.
            self.overran = self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps.append(self.clock() - self._step_began)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = self.clock()
        took = now - self._epoch_began
        if self._first_of_fit and len(self._steps) > 1:
            steps = self._steps
            tracing = max(0.0, steps[0] - sum(steps[1:]) / (len(steps) - 1))
            took -= tracing
            # Until a re-plan has been timed, its pause is guessed as long as the tracing.
            pause = self._pause if self._pause else tracing
            self.replan_cost = max(self.replan_cost, tracing + pause)
        self._first_of_fit, self._epoch_ended = False, now
        self.times.append(took)
        self.done = epoch + 1
        left = self.deadline - now
        per_epoch = max(self.times[-3:])
        # Kept as it is, the plan costs no re-plan; a new plan costs one.
        keep = self.done + int(left // (1.02 * per_epoch))
        fit = self.done + int((left - self.replan_cost) // (1.02 * per_epoch))
        # Growing re-lays the schedule: only early, while the learning rate is near its peak.
        grow = fit >= max(self.epochs + 2, 1.05 * self.epochs) and self.done <= self.epochs // 4
        if self.overran or not (self.done < self.epochs and keep < self.epochs or grow):
            return
        if keep < self.epochs:  # Cut with a wider margin: one re-plan should do.
            fit = self.done + int((left - self.replan_cost) // (1.05 * per_epoch))
        self.replan = max(fit, self.done)
        self.model.stop_training = True


def fit_within(
    model: keras.Model,
    dataset: Any,
    epochs: int,
    deadline: float,
    schedule: Callable[[int], Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Trains a compiled `model` on `dataset` for about `epochs` epochs, ending by `deadline`.

    `epochs` is the plan made from a measured step time (`epochs_within`);
    whole epochs can run slower or faster than the few steps measured, so
    after each epoch the epochs left are re-planned from the epochs' times
    to end by `deadline` (a `clock()` value: `time.perf_counter()` unless
    a test passes its own clock). On a re-plan
    `schedule(epochs)`, when given, is the learning rate (schedule) for the
    new count, and the training step is traced again with it; the progress
    line, when among `callbacks`, shows the new count. The first epoch is
    always trained whole. Returns the epochs trained; a last epoch cut short
    at the deadline counts.

    ```python
    from kerasnas.training import epochs_within, fit_within, measure_step_seconds, steps_per_epoch

    deadline = time.perf_counter() + 1800  # Half an hour from now.
    step_s, first_s = measure_step_seconds(make_model(), dataset)  # A throwaway copy.
    epochs = epochs_within(1800, step_s, steps_per_epoch(dataset), first_s)
    model = make_model()  # Compiled with a constant learning rate.
    trained = fit_within(model, dataset, epochs, deadline)
    ```
    """
    pacer = _Pacer(deadline, epochs, clock)
    while True:
        model.fit(dataset, initial_epoch=pacer.done, epochs=epochs, verbose=0, shuffle=False,
                  callbacks=[*callbacks, pacer])  # fmt: skip
        if pacer.overran:
            log.info(
                "  the time budget is spent: training stopped in epoch %d/%d", pacer.done, epochs
            )
            return pacer.done
        if pacer.replan is None:
            return pacer.done
        if pacer.replan <= pacer.done:
            log.info(
                "  no further epoch fits the time left: training stopped after epoch %d/%d",
                pacer.done,
                epochs,
            )
            return pacer.done
        log.info(
            "  re-planned: %d epochs instead of %d fit the time left (an epoch takes about %.1f s)",
            pacer.replan,
            epochs,
            pacer.times[-1],
        )
        epochs = pacer.epochs = pacer.replan
        for callback in callbacks:
            if isinstance(callback, EpochProgress):
                callback.epochs = epochs
        if schedule is not None:
            model.optimizer.learning_rate = schedule(epochs)
            model.train_function = None  # Traced again, with the new schedule.


class EpochProgress(keras.callbacks.Callback):
    """Prints a line per epoch of a long training (the final retraining)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self._start:  # Once: `fit_within` may resume training with another fit().
            self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
        log.info(
            "  epoch %d/%d %s elapsed=%.0fs",
            epoch + 1,
            self.epochs,
            shown,
            time.perf_counter() - self._start,
        )


class DeadlineStop(keras.callbacks.Callback):
    """Stops a training when the time left no longer covers what must still run: the
    stopped epoch's validation pass and `margin()` seconds.

    It checks after each batch, and after each epoch whether one more step of the
    next epoch (or, when longer, the start of an epoch: an input pipeline can
    hold it for seconds), its validation pass and the margin still fit; if not,
    the training ends with that epoch. A stopped epoch still ends as Keras ends
    an epoch (its validation pass, the checkpoint of the best epoch), so the
    trial keeps and reports its best epoch so far. Before a validation pass has
    been timed, one is estimated from the training steps: `validation_batches`
    forward passes at a third of the mean training step each (a forward pass
    is about a third of a step's work; for a NASNet-space network on 1,000
    Fashion-MNIST images, 4.2 s estimated and 4.1 s measured, tracing
    included). keras-tuner deep-copies a trial's callbacks: this one is shared
    instead, so that the runner can read what it measured afterwards.

    Args:
        seconds_left: Seconds left before the deadline, when called.
        margin: Seconds to keep free after the training ends (e.g. the work
            after a trial), when called. Defaults to none.
        validation_seconds: The expected seconds of a validation pass, before
            one has been timed (e.g. an earlier trial's). Defaults to an estimate.
        validation_batches: Batches of a validation pass (for the estimate), or
            None when the training has no validation data or its size is unknown.
        clock: The clock of `seconds_left` and of the times it measures.
            Defaults to `time.perf_counter`.

    Attributes:
        stopped_in_epoch: The 1-based epoch in which the training stopped (the
            epoch after the last whole one when it stopped between epochs), or None.
        first_epoch_end: `clock()` when the first epoch (and its
            validation pass) ended, or None.
    """

    def __init__(
        self,
        seconds_left: Callable[[], float],
        margin: Callable[[], float] | None = None,
        validation_seconds: float = 0.0,
        validation_batches: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        self.seconds_left, self.clock = seconds_left, clock
        self.margin = margin or (lambda: 0.0)
        self.validation_seconds = float(validation_seconds)
        self.validation_batches = validation_batches
        self.stopped_in_epoch: int | None = None
        self.first_epoch_end: float | None = None
        self.step_seconds = 0.0  # The mean step, the first (which traces) left out.
        self._steps = 0
        # The longest time from an epoch's start to the end of its first step.
        self._epoch_start_seconds = 0.0
        self._epoch = 0
        self._epochs_begun = 0
        self._epoch_begin = self._batch_begin = 0.0
        self._test_start: float | None = None

    def __deepcopy__(self, memo: dict) -> DeadlineStop:
        return self

    def expected_validation(self) -> float:
        """Seconds of the next validation pass: the longest timed one, else an estimate."""
        if self.validation_seconds or not self.validation_batches:
            return self.validation_seconds
        return self.validation_batches * self.step_seconds / 3

    def _stop(self, epoch: int) -> None:
        self.stopped_in_epoch = epoch
        self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._epochs_begun += 1
        self._epoch_begin = self.clock()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._batch_begin = self.clock()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._test_start = self.clock()

    def on_test_end(self, logs: dict | None = None) -> None:
        if self._test_start is not None:
            seconds = self.clock() - self._test_start
            self.validation_seconds = max(self.validation_seconds, seconds)
            self._test_start = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = self.clock()
        if self._epochs_begun > 1 or batch > 0:
            self._steps += 1
            self.step_seconds += (now - self._batch_begin - self.step_seconds) / self._steps
        if batch == 0 and self._epochs_begun > 1:
            self._epoch_start_seconds = max(self._epoch_start_seconds, now - self._epoch_begin)
        if self.stopped_in_epoch is None:
            if self.seconds_left() <= self.expected_validation() + self.margin():
                self._stop(self._epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch_end is None:
            self.first_epoch_end = self.clock()
        if self.stopped_in_epoch is not None or epoch + 1 >= self.params.get("epochs", 0):
            return
        next_step = max(self.step_seconds, self._epoch_start_seconds)
        if self.seconds_left() <= next_step + self.expected_validation() + self.margin():
            self._stop(epoch + 2)
