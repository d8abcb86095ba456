"""The strategy hooks the trial runner calls (docs/architecture.md), and the output rules."""

import pathlib
import time

import keras
import keras_tuner
import pytest
import tensorflow as tf

import kerasnas as kn
from tests import tiny

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _SlowPrepare(kn.oracles.RandomSearchOracle):
    """Random search whose `prepare` takes `seconds` (a stand-in for supernet training)."""

    def __init__(self, space, seconds: float, **kwargs):
        super().__init__(space, **kwargs)
        self.seconds, self.calls = seconds, []

    def prepare(self, context):
        self.calls.append(context)
        time.sleep(self.seconds)


class _Epochs(kn.oracles.RandomSearchOracle):
    """Random search that trains trial n for n + 1 epochs."""

    def trial_epochs(self, trial):
        return int(trial.trial_id) + 1


def test_a_plain_keras_tuner_refuses_strategies_that_need_the_runner(tmp_path):
    space = tiny.space(num_classes=10, input_shape=(8, 8, 1))
    for oracle in (
        kn.oracles.MorphismOracle(space, max_trials=2),
        kn.oracles.OneShotOracle(space, max_trials=2, num_candidates=2),
    ):
        with pytest.raises(ValueError, match=r"kerasnas\.Search.*kerasnas\.NasTuner"):
            keras_tuner.Tuner(oracle=oracle, hypermodel=space, directory=tmp_path)
        kn.NasTuner(oracle, space, directory=tmp_path, project_name=type(oracle).__name__)


@pytest.mark.usefixtures("eager")
def test_a_plain_keras_tuner_runs_random_search(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    space = tiny.space(num_classes=10, input_shape=(8, 8, 1))
    oracle = kn.oracles.RandomSearchOracle(space, max_trials=1, seed=0)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=space, directory=tmp_path)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED"]


@pytest.mark.usefixtures("eager")
def test_prepare_runs_once_with_the_data_and_counts_against_the_budget(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)

    def search(seconds, budget):
        space = tiny.fast_space()
        oracle = _SlowPrepare(space, seconds, max_trials=2, seed=0)
        return kn.Search(space, oracle, directory=tmp_path, time_budget=budget, seed=0)

    first = search(1.0, 0.5).fit(x, y, validation_data=(xv, yv), epochs=1)
    (context,) = first.oracle.calls
    assert isinstance(context.train, tf.data.Dataset) and context.validation is not None
    assert context.directory == first.project_dir
    assert first.results() == []  # The preparation spent the budget: no trial started.
    assert "the time budget would be exceeded" in capsys.readouterr().out
    assert first.time_left() == 0.0

    # A resumed search counts the earlier run's preparation: with 1.2 s of budget, 1 s
    # already spent and a fresh preparation of 0.3 s, no trial fits either.
    again = search(0.3, 1.2).fit(x, y, validation_data=(xv, yv), epochs=1)
    assert again.results() == [] and again.time_left() == 0.0
    # With room left, trials run after the preparation.
    roomy = search(0.0, 600).fit(x, y, validation_data=(xv, yv), epochs=1)
    assert len(roomy.results()) == 2
    assert 600 - roomy.time_left() >= 1.3


class _CountEpochs(keras.callbacks.Callback):
    """Counts the epochs of each training (a class attribute: trials get deep copies)."""

    counts: list[int] = []

    def on_train_begin(self, logs=None):
        _CountEpochs.counts.append(0)

    def on_epoch_end(self, epoch, logs=None):
        _CountEpochs.counts[-1] += 1


@pytest.mark.usefixtures("eager")
def test_trial_epochs_sets_each_trials_epochs(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    space = tiny.fast_space()
    search = kn.Search(space, _Epochs(space, max_trials=2, seed=0), directory=tmp_path, seed=0)
    _CountEpochs.counts = []
    search.fit(x, y, validation_data=(xv, yv), epochs=5, callbacks=[_CountEpochs()])
    assert _CountEpochs.counts == [1, 2]


@pytest.mark.usefixtures("eager")
def test_verbose_zero_prints_nothing_and_verbose_one_reports(tmp_path, capsys):
    table = kn.benchmarks.macro_table_path(str(ROOT))
    if table is None:
        pytest.skip("../shared/data/nas-bench-macro_cifar10.json is absent")
    bench = kn.benchmarks.load_macro(table)
    for verbose in (0, 1):
        kn.Search(
            bench.space, "random", max_trials=200, evaluator=bench, seed=0, verbose=verbose,
            directory=tmp_path, project_name=f"v{verbose}", time_budget=1e-3,
        ).fit()  # fmt: skip
        out = capsys.readouterr().out
        if verbose:
            assert "[kerasnas] random search" in out and "search stopped" in out
        else:
            assert out == ""


def test_morphism_refuses_only_spaces_it_cannot_transform():
    with pytest.raises(ValueError, match="cannot search a RNNCellSpace"):
        kn.oracles.MorphismOracle(kn.spaces.RNNCellSpace(), max_trials=2)
    # A lineage lives in the trial's plan, not among its values: any space's values do.
    kn.oracles.MorphismOracle(kn.spaces.ConvNetSpace(), max_trials=2)
    kn.oracles.MorphismOracle(tiny.space(), max_trials=2)
