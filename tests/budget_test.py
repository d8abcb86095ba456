"""Time-budgeted searches: no trial starts that would not fit."""

import time

import pytest

import kerasnas as kn
from kerasnas.training import runner
from kerasnas.training.budget import budget_stop_reason
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
