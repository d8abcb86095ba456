"""Final training of the best network(s) after a search, and its export."""

import functools
import math
import re

import keras
import numpy as np
import pytest

import kerasnas as kn
from tests import tiny


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    space = kn.spaces.ChainSpace(max_layers=2, filters=(4, 8), kernels=(3,))
    # Two trials: enough for top_k=2.
    s = kn.Search(space, max_trials=2, seed=0, directory=tmp_path_factory.mktemp("runs"))
    with tiny.eagerly():
        s.fit(x, y, validation_data=(xv, yv), epochs=1)
    return s


def test_retrain_trains_the_best_network_on_train_and_validation(search, tmp_path):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    model = search.retrain(x, y, (xv, yv), epochs=2, batch_size=50)
    assert int(model.optimizer.iterations) == 2 * math.ceil((300 + 100) / 50)
    assert model.count_params() == search.best_model().count_params()
    path = search.export(tmp_path / "final.keras")
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(xv, training=False), model(xv, training=False),
                               atol=1e-6)  # fmt: skip


def test_retrain_top_k_keeps_the_best_on_validation(search, capsys):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    model = search.retrain(x, y, (xv, yv), epochs=1, top_k=2)
    out = capsys.readouterr().out
    scores = [float(v) for v in re.findall(r"validation accuracy=([0-9.]+)", out)]
    assert len(scores) == 2 and out.count("[kerasnas] retraining trial") == 2
    _, accuracy = model.evaluate(xv, yv, verbose=0)
    assert accuracy == pytest.approx(max(scores), abs=1e-4)
    assert int(model.optimizer.iterations) == math.ceil(300 / 32)  # Trained on x only.


def test_retrain_refuses_bad_input(search):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    with pytest.raises(ValueError, match="pass validation_data"):
        search.retrain(x, y, epochs=1, top_k=2)
    with pytest.raises(ValueError, match="epochs must be an integer"):
        search.retrain(x, y, epochs=0)
    with pytest.raises(ValueError, match="shape"):
        search.retrain(np.zeros((10, 4, 4, 1), "float32"), np.zeros(10, "int64"), epochs=1)


def test_epochs_within_a_time_budget():
    from kerasnas.training import epochs_within

    # 100 steps of 0.1 s (plus 10 % margin) per epoch; the first step's 5 s once.
    assert epochs_within(100.0, 0.1, 100, 5.0) == 8
    assert epochs_within(60.0, 0.1, 100, 5.0) == 5
    assert epochs_within(1.0, 0.1, 100, 5.0) == 1  # At least one epoch.


def test_step_seconds_are_measured_on_a_few_steps():
    from kerasnas.training import measure_step_seconds

    (x, y), _ = tiny.digits(64, 10)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    dataset = kn.data.to_dataset(x, y, 32)  # 2 batches: repeated to 25 steps.
    step, first = measure_step_seconds(model, dataset)
    assert int(model.optimizer.iterations) == 25
    assert 0 < step < first


class _FakeClock(keras.callbacks.Callback):
    """A clock that training moves: each step 0.01 s (the first of each fit() 1 s more:
    tracing), each epoch's end 0.5 s. Deterministic, unlike a loaded CPU."""

    def __init__(self):
        super().__init__()
        self.now, self.epochs, self._first = 0.0, 0, True

    def __call__(self) -> float:
        return self.now

    def on_train_begin(self, logs=None):
        self._first = True

    def on_train_batch_end(self, batch, logs=None):
        self.now += 0.01 + (1.0 if self._first else 0.0)
        self._first = False

    def on_epoch_end(self, epoch, logs=None):
        self.now += 0.5
        self.epochs += 1


def _fit_within(planned: int, budget: float, capsys):
    from kerasnas.training import fit_within

    (x, y), _ = tiny.digits(64, 10)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    recipe = kn.Recipe(epochs=planned, learning_rate=0.01)
    recipe.compile(model, steps_per_epoch=2)
    clock = _FakeClock()
    epochs = fit_within(model, kn.data.to_dataset(x, y, 32), planned, budget,
                        functools.partial(recipe.learning_rate_schedule, 2), [clock],
                        clock=clock)  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("re-planned") == 1 and "training stopped" not in out  # One re-plan does.
    assert epochs == clock.epochs and int(model.optimizer.iterations) == 2 * epochs
    # The re-laid cosine schedule ends with the training.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-7)
    return epochs, clock.now


def test_fit_within_cuts_the_plan_when_epochs_run_slower(capsys):
    # Planned 1,000 epochs of 0.52 s; with 1 s of tracing per fit() about 6 fit in 6 s.
    epochs, took = _fit_within(1000, 6.0, capsys)
    assert 4 <= epochs <= 7 and took <= 6.0


def test_fit_within_grows_the_plan_early_when_time_is_left(capsys):
    # Planned 4 epochs of 0.52 s; with 1 s of tracing per fit() about 15 fit in 10 s.
    epochs, took = _fit_within(4, 10.0, capsys)
    assert 10 <= epochs <= 16 and took <= 10.0


def test_retrain_within_a_time_budget(search, capsys):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    # Batches of 2: epochs of 200 steps, long next to the retracing a re-plan costs.
    recipe = kn.Recipe(epochs=50, batch_size=2, learning_rate=0.01)
    # How long it takes is fit_within's tests' business: on a loaded machine even the one
    # epoch always trained (and its tracing) can take longer than this budget.
    model = search.retrain(x, y, (xv, yv), recipe=recipe, time_budget=3.0)
    out = capsys.readouterr().out
    assert re.search(r"for (\d+) epochs \(time_budget: \d+ s, \d+ ms a step\)", out)
    # After each epoch the plan may be re-made from the epochs' times.
    epochs = out.count("  epoch ")
    assert epochs >= 1 and int(model.optimizer.iterations) == epochs * 200
    done, planned = (int(n) for n in re.findall(r"  epoch (\d+)/(\d+) ", out)[-1])
    if done == planned:
        # The cosine schedule spans those epochs: it has decayed to zero at the end.
        assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-6)
    else:  # The plan could not be kept (a re-plan costs tracing, or a loaded CPU): it says so.
        assert "training stopped" in out
    with pytest.raises(ValueError, match="not both"):
        search.retrain(x, y, epochs=2, time_budget=10)
    with pytest.raises(ValueError, match="time_budget must be a number of seconds > 0"):
        search.retrain(x, y, recipe=recipe, time_budget=0)
