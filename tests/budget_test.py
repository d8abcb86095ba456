"""Time-budgeted searches: no trial starts that would not fit."""

import time

import pytest

import kerasnas as kn
from kerasnas.training import runner
from kerasnas.training.budget import budget_stop_reason, search_stop_reason
from kerasnas.training.evaluators import validation_batches
from kerasnas.training.pacing import DeadlineStop
from tests import tiny


def test_the_stop_rule():
    assert budget_stop_reason(used=0.0, next_trial=0.0, reserve=0.0, budget=10.0) is None
    assert budget_stop_reason(used=4.0, next_trial=5.0, reserve=1.0, budget=10.0) is None
    reason = budget_stop_reason(used=4.0, next_trial=5.0, reserve=1.5, budget=10.0)
    assert "time budget would be exceeded" in reason and "1.5 s are reserved" in reason
    assert budget_stop_reason(used=9.0, next_trial=0.0, reserve=1.0, budget=10.0)  # Nothing left.


def test_bad_budgets_are_refused():
    space = kn.spaces.ChainSpace()
    assert kn.Search(space).time_left() is None
    with pytest.raises(ValueError, match="time_budget must be > 0"):
        kn.Search(space, time_budget=0)
    with pytest.raises(ValueError, match="reserve must be >= 0 and less than time_budget"):
        kn.Search(space, time_budget=10, reserve=10)


@pytest.mark.usefixtures("eager")
def test_a_budgeted_search_stops_before_overrunning(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    space = kn.spaces.ChainSpace(max_layers=3, filters=(4, 8, 16), kernels=(3, 5))
    # One trial to measure a trial's time.
    probe = kn.Search(space, max_trials=1, seed=0, directory=tmp_path, project_name="probe")
    probe.fit(x, y, validation_data=(xv, yv), epochs=1)
    trial = probe.results()[0]["train_time"]
    budget = 4.5 * trial
    search = kn.Search(space, strategy="random", max_trials=50, seed=0, directory=tmp_path,
                       time_budget=budget, reserve=trial)  # fmt: skip
    assert search.time_left() == budget
    start = time.perf_counter()
    search.fit(x, y, validation_data=(xv, yv), epochs=1)
    elapsed = time.perf_counter() - start
    # What the search left of the budget (the reserve at least, unless a trial overran).
    assert 0 <= search.time_left() <= budget - elapsed + 2.0  # (its clock starts in fit)
    out = capsys.readouterr().out
    done = len(search.completed_trials())
    assert 1 <= done < 50
    assert "search stopped: the time budget would be exceeded" in out
    assert "budget_left=" in out
    # Every trial started with room for the longest one so far plus the reserve; allow
    # one trial's worth of slack for a trial slower than all before it.
    assert elapsed < budget + 2 * max(r["train_time"] for r in search.results())
    # A resumed search counts the earlier trials' time and starts nothing new.
    again = kn.Search(space, strategy="random", max_trials=50, seed=0, directory=tmp_path,
                      time_budget=budget, reserve=trial)  # fmt: skip
    again.fit(x, y, validation_data=(xv, yv), epochs=1)
    assert len(again.completed_trials()) <= done + 1


class _Batches(kn.spaces.base.keras.callbacks.Callback):
    """Counts training batches (a class attribute: keras-tuner deep-copies callbacks)."""

    seen = 0

    def on_train_batch_end(self, batch, logs=None):
        _Batches.seen += 1


@pytest.mark.usefixtures("eager")
def test_a_running_trial_is_stopped_at_the_deadline_and_keeps_its_best_epoch(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(64, 32)  # 2 batches of 32 an epoch.
    space = tiny.fast_space(num_classes=10, input_shape=(8, 8, 1))
    search = kn.Search(space, max_trials=3, seed=0, directory=tmp_path, time_budget=20)
    # A clock that moves one second a batch: the deadline falls after 20 batches, less the
    # second kept free for the search's end (runner.END_SECONDS; validation takes ~0 s).
    search._get_tuner().time_used = lambda: float(_Batches.seen)
    _Batches.seen = 0
    search.fit(x, y, validation_data=(xv, yv), epochs=10_000, callbacks=[_Batches()])
    (record,) = search.results()
    assert record["status"] == "COMPLETED" and record["score"] is not None
    assert record["metrics"]["cut_short"] == 10  # Stopped in epoch 10, after its 19th batch.
    assert _Batches.seen == 20 - runner.END_SECONDS
    out = capsys.readouterr().out
    assert "trial 1: the time budget stopped its training in epoch 10" in out
    assert "search stopped: the time budget would be exceeded" in out
    assert search.best_model().count_params() == record["params"]  # Its best epoch's weights.


@pytest.mark.usefixtures("eager")
def test_a_trial_stopped_in_its_first_epoch_is_warned_about(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(64, 32)
    space = tiny.fast_space(num_classes=10, input_shape=(8, 8, 1))
    search = kn.Search(space, max_trials=3, seed=0, directory=tmp_path, time_budget=1)
    search._get_tuner().time_used = lambda: float(_Batches.seen)
    _Batches.seen = 0
    search.fit(x, y, validation_data=(xv, yv), epochs=5, callbacks=[_Batches()])
    assert search.results()[0]["metrics"]["cut_short"] == 1
    assert "one epoch does not fit the time left" in capsys.readouterr().err


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Model:
    stop_training = False


def _deadline_stop(clock, budget, **kwargs):
    stop = DeadlineStop(lambda: budget - clock(), clock=clock, **kwargs)
    stop.set_model(_Model())
    stop.set_params({"epochs": 10, "steps": 3})
    return stop


def _epoch(stop, clock, epoch, steps, start_wait=0.0, step=1.0, validation=5.0):
    """Runs one epoch of `steps` batches past `stop`; False when it stopped the training."""
    stop.on_epoch_begin(epoch)
    clock.now += start_wait  # e.g. an input pipeline holding the epoch's start
    for batch in range(steps):
        stop.on_train_batch_begin(batch)
        clock.now += step
        stop.on_train_batch_end(batch)
        if stop.model.stop_training:
            break
    stop.on_test_begin()
    clock.now += validation
    stop.on_test_end()
    stop.on_epoch_end(epoch)
    return not stop.model.stop_training


def test_the_deadline_stops_between_epochs_when_the_next_one_would_overrun():
    clock = _Clock()
    stop = _deadline_stop(clock, budget=30.0)
    assert _epoch(stop, clock, 0, 3)  # 3 s of steps, 5 s of validation: 22 s left.
    assert stop.first_epoch_end == 8.0
    # The next epoch's start waits 10 s (its first step ends 11 s after it began): 4 s left
    # after it, fewer than the longest start of an epoch and a validation pass need.
    assert not _epoch(stop, clock, 1, 3, start_wait=10.0)
    assert stop.stopped_in_epoch == 3 and clock.now == 26.0
    # The last planned epoch ends the training without being counted as a stop.
    clock = _Clock()
    stop = _deadline_stop(clock, budget=30.0)
    stop.set_params({"epochs": 2, "steps": 3})
    assert _epoch(stop, clock, 0, 3) and _epoch(stop, clock, 1, 3, start_wait=10.0)
    assert stop.stopped_in_epoch is None


def test_the_deadline_estimates_a_validation_pass_before_timing_one():
    clock = _Clock()
    stop = _deadline_stop(clock, budget=100.0, validation_batches=30)
    stop.on_epoch_begin(0)
    for batch in range(3):
        stop.on_train_batch_begin(batch)
        clock.now += 20.0 if batch == 0 else 1.0  # The first step traces: not counted.
        stop.on_train_batch_end(batch)
    assert stop.expected_validation() == 10.0  # 30 forward passes at a third of a 1 s step.
    clock.now = 89.5  # 10.5 s left: a validation pass (10 s) and a step still fit ...
    stop.on_train_batch_begin(3)
    clock.now += 1.0
    stop.on_train_batch_end(3)  # ... but no further step after this one.
    assert stop.stopped_in_epoch == 1
    # A timed validation pass replaces the estimate; none is expected without validation data.
    stop.on_test_begin()
    clock.now += 2.0
    stop.on_test_end()
    assert stop.expected_validation() == 2.0
    assert _deadline_stop(clock, budget=100.0).expected_validation() == 0.0


def test_validation_batches_are_counted_from_arrays_and_datasets():
    import numpy as np

    from kerasnas.data.pipeline import to_dataset

    x, y = np.zeros((70, 2), "float32"), np.zeros(70, "int64")
    assert validation_batches({"validation_data": (x, y), "batch_size": 32}) == 3
    assert validation_batches({"validation_data": (x, y)}) == 3  # Keras's default batch: 32.
    assert validation_batches({"validation_data": to_dataset(x, y, 10)}) == 7
    assert validation_batches({}) is None


def test_a_trial_starts_when_its_first_epoch_fits():
    # The longest trial took 50 s; 60 s of 100 are used: a whole trial does not fit ...
    assert search_stop_reason([50.0], 60.0, None, 100.0, 0.0) is not None
    # ... but its first epoch (20 s) does: the deadline stops it after its last whole epoch.
    assert search_stop_reason([50.0], 60.0, None, 100.0, 0.0, next_trial=20.0) is None
