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
