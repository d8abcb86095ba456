"""Final training of the best network(s) after a search, and its export."""

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
    s = kn.Search(space, max_trials=3, seed=0, directory=tmp_path_factory.mktemp("runs"))
    s.fit(x, y, validation_data=(xv, yv), epochs=1)
    return s


def test_retrain_trains_the_best_network_on_train_and_validation(search, tmp_path):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    model = search.retrain(x, y, (xv, yv), epochs=2, batch_size=50)
    assert int(model.optimizer.iterations) == 2 * math.ceil((300 + 100) / 50)
    assert model.count_params() == search.best_model().count_params()
    path = search.export(tmp_path / "final.keras")
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(xv, verbose=0), model.predict(xv, verbose=0),
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
    from kerasnas.search import epochs_within

    # 100 steps of 0.1 s (plus 10 % margin) per epoch; the first step's 5 s once.
    assert epochs_within(100.0, 0.1, 100, 5.0) == 8
    assert epochs_within(60.0, 0.1, 100, 5.0) == 5
    assert epochs_within(1.0, 0.1, 100, 5.0) == 1  # At least one epoch.


def test_step_seconds_are_measured_on_a_few_steps():
    from kerasnas.search import measure_step_seconds

    (x, y), _ = tiny.digits(64, 10)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    dataset = kn.data.to_dataset(x, y, 32)  # 2 batches: repeated to 25 steps.
    step, first = measure_step_seconds(model, dataset)
    assert int(model.optimizer.iterations) == 25
    assert 0 < step < first


def test_retrain_within_a_time_budget(search, capsys):
    (x, y), (xv, yv) = tiny.digits(300, 100)
    recipe = kn.Recipe(epochs=50, batch_size=50, learning_rate=0.01)
    model = search.retrain(x, y, (xv, yv), recipe=recipe, time_budget=4.0)
    out = capsys.readouterr().out
    epochs = int(re.search(r"for (\d+) epochs \(time_budget: \d+ s, \d+ ms a step\)", out)[1])
    assert epochs >= 1 and out.count("  epoch ") == epochs
    assert int(model.optimizer.iterations) == epochs * math.ceil(400 / 50)
    # The cosine schedule spans those epochs: it has decayed to zero at the end.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="not both"):
        search.retrain(x, y, epochs=2, time_budget=10)
    with pytest.raises(ValueError, match="time_budget must be a number of seconds > 0"):
        search.retrain(x, y, recipe=recipe, time_budget=0)
