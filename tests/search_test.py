"""End-to-end tests of kerasnas.Search on real (small) data."""

import json
import os

import keras
import keras_tuner
import numpy as np
import pytest

import kerasnas as kn
from tests import tiny


def make_search(tmp_path, name="s", **kwargs):
    config = dict(
        strategy="random",
        objective="val_accuracy",
        max_trials=2,
        directory=str(tmp_path),
        project_name=name,
        seed=0,
    )
    config.update(kwargs)
    # The search machinery is tested: the fastest-tracing cells show it.
    space = config.pop("space", None) or tiny.fast_space()
    return kn.Search(space, **config)


def test_search_results_best_model_and_export(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits()
    search = make_search(tmp_path, max_trials=2)
    search.fit(x, y, validation_data=(xv, yv), epochs=2)
    out = capsys.readouterr().out
    assert "[kerasnas] trial 1/2 arch=" in out and "[kerasnas] trial 2/2 arch=" in out
    assert "best=" in out and "elapsed=" in out and "rank" in out

    # The space learnt its shape and classes from the data.
    assert search.space.input_shape == (8, 8, 1) and search.space.num_classes == 10
    results = search.results()
    assert [r["trial_id"] for r in results] == ["0", "1"]
    for r in results:
        assert r["status"] == "COMPLETED"
        arch = kn.Architecture.from_json(r["architecture"])
        assert arch.hash() == r["hash"]
        assert set(r["metrics"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert r["score"] == r["metrics"]["val_accuracy"]
        assert r["params"] > 0 and r["train_time"] > 0 and r["message"] is None
        stored = os.path.join(tmp_path, "s", f"trial_{r['trial_id']}", "architecture.json")
        with open(stored) as f:
            assert kn.Architecture.from_config(json.load(f)) == arch

    best = search.best_architectures(2)
    scores = sorted((r["score"] for r in results), reverse=True)
    assert [search.results()[int(t.trial_id)]["score"] for t in search.best_trials(2)] == scores
    assert best[0].hash() == max(results, key=lambda r: r["score"])["hash"]

    model = search.best_model()
    _, val_acc = model.evaluate(xv, yv, verbose=0)
    assert val_acc == pytest.approx(max(scores), abs=1e-6)
    assert model.count_params() == max(results, key=lambda r: r["score"])["params"]

    path = search.export(tmp_path / "best.keras")
    loaded = keras.models.load_model(path)  # no custom_objects
    np.testing.assert_allclose(loaded(xv, training=False), model(xv, training=False), atol=1e-5)
    with pytest.raises(ValueError, match=".keras"):
        search.export(tmp_path / "best.h5")


@pytest.mark.usefixtures("eager")
def test_resume_ends_with_exactly_max_trials_and_no_repeats(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=200, val=100)
    space_args = dict(num_blocks=1, ops=["max_pool_3x3", "identity"])
    first = make_search(tmp_path, "resume", space=tiny.space(**space_args), max_trials=2)
    first.fit(x, y, validation_data=(xv, yv), epochs=1)
    assert len(first.completed_trials()) == 2
    again = make_search(tmp_path, "resume", space=tiny.space(**space_args), max_trials=4)
    again.fit(x, y, validation_data=(xv, yv), epochs=1)
    results = again.results()
    assert len(results) == 4
    assert all(r["status"] == "COMPLETED" for r in results)
    assert len({r["hash"] for r in results}) == 4
    # The first two trials are the ones of the first run, untouched.
    assert [r["hash"] for r in results[:2]] == [r["hash"] for r in first.results()]
    # A fresh Search object reads the stored project without fitting.
    reader = make_search(tmp_path, "resume", space=tiny.space(**space_args), max_trials=4)
    assert len(reader.results()) == 4
    assert reader.best_model().count_params() > 0


def test_resume_with_another_space_is_refused(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    make_search(tmp_path, "p", max_trials=1).fit(x, y, validation_data=(xv, yv), epochs=1)
    other = make_search(tmp_path, "p", space=tiny.fast_space(filters=16), max_trials=2)
    with pytest.raises(ValueError, match="searched with another space"):
        other.fit(x, y, validation_data=(xv, yv), epochs=1)
    assert len(make_search(tmp_path, "p").results()) == 1  # The store is intact.


def test_resume_with_other_training_settings_is_refused(tmp_path):
    # Trials of 1 and 2 epochs would be ranked together: a score's meaning changed.
    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    make_search(tmp_path, "p", max_trials=1).fit(x, y, validation_data=(xv, yv), epochs=1)
    again = make_search(tmp_path, "p", max_trials=2)
    with pytest.raises(ValueError, match=r"another training(.|\n)*epochs.: 1(.|\n)*epochs.: 2"):
        again.fit(x, y, validation_data=(xv, yv), epochs=2)
    with pytest.raises(ValueError, match="another training"):
        again.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=16)
    assert len(make_search(tmp_path, "p").results()) == 1  # The store is intact.
    again.fit(x, y, validation_data=(xv, yv), epochs=1)  # The same settings resume it.
    assert len(again.results()) == 2


def test_tf_data_input(tmp_path):
    import tensorflow as tf

    (x, y), (xv, yv) = tiny.digits(train=200, val=100)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(32)
    search = make_search(tmp_path, "tfdata", max_trials=1)
    search.fit(train, validation_data=val, epochs=1)
    assert search.space.num_classes == 10
    assert search.results()[0]["status"] == "COMPLETED"


class FailFirstTrial(keras.callbacks.Callback):
    """Raises in the first trial it sees (callbacks are deep-copied per trial)."""

    calls = []

    def on_train_begin(self, logs=None):
        FailFirstTrial.calls.append(1)
        if len(FailFirstTrial.calls) == 1:
            raise RuntimeError("simulated out-of-memory in trial 0")


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(train=200, val=100)
    FailFirstTrial.calls = []
    search = make_search(tmp_path, "fail", max_trials=2)
    search.fit(x, y, validation_data=(xv, yv), epochs=1, callbacks=[FailFirstTrial()])
    results = search.results()
    assert [r["status"] for r in results] == ["FAILED", "COMPLETED"]
    assert "simulated out-of-memory" in results[0]["message"]
    assert "FAILED: RuntimeError: simulated out-of-memory" in capsys.readouterr().out


def test_a_diverging_trial_fails_with_nan_loss(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    # A learning rate this large overflows the weights: the loss becomes NaN.
    search = make_search(tmp_path, "nan", max_trials=1, space=tiny.fast_space(learning_rate=1e20))
    search.fit(x, y, validation_data=(xv, yv), epochs=2)
    (result,) = search.results()
    assert result["status"] == "FAILED"
    assert "Training loss became nan" in result["message"]


def test_oversized_models_fail_without_training(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    search = make_search(
        tmp_path, "big", max_trials=1, max_model_size=10, max_consecutive_failed_trials=5
    )
    search.fit(x, y, validation_data=(xv, yv), epochs=1)
    (result,) = search.results()
    assert result["status"] == "FAILED" and "Oversized model" in result["message"]
    with pytest.raises(ValueError, match="No trial has completed"):
        search.best_model()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(strategy="bayes"), "Unknown strategy 'bayes'"),
        (dict(max_trials=0), "max_trials must be an integer >= 1"),
        (dict(max_trials=-3), "max_trials must be an integer >= 1"),
        (dict(space="nasnet"), "SearchSpace"),
    ],
)
def test_bad_search_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        if "space" in kwargs:
            kn.Search(kwargs.pop("space"), directory=str(tmp_path))
        else:
            make_search(tmp_path, **kwargs)


def test_objective_not_produced_by_the_model(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=50, val=20)
    search = make_search(tmp_path, objective=keras_tuner.Objective("val_auc_roc", "max"))
    with pytest.raises(ValueError, match="'val_auc_roc' is not a metric the models produce"):
        search.fit(x, y, validation_data=(xv, yv), epochs=1)
    search = make_search(tmp_path, objective="val_accuracy")
    with pytest.raises(ValueError, match="need validation_data"):
        search.fit(x, y, epochs=1)
    assert not os.path.exists(os.path.join(tmp_path, "s"))  # Nothing was written.


def test_data_that_does_not_fit_the_space(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=50, val=20)
    search = make_search(tmp_path, space=tiny.fast_space(num_classes=5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\).*label 9"):
        search.fit(x, y, validation_data=(xv, yv), epochs=1)
    search = make_search(tmp_path)
    with pytest.raises(ValueError, match="needs images"):
        search.fit(x.reshape(len(x), 64), y, validation_data=(xv.reshape(len(xv), 64), yv))
    with pytest.raises(ValueError, match="is empty"):
        search.fit(x[:0], y[:0], validation_data=(xv, yv))
    with pytest.raises(ValueError, match="50 examples but y has 49 labels"):
        search.fit(x, y[:49], validation_data=(xv, yv))
    with pytest.raises(ValueError, match="class indices"):
        search.fit(x, y - 1, validation_data=(xv, yv))
    with pytest.raises(ValueError, match="class indices"):
        search.fit(x, y + 0.5, validation_data=(xv, yv))
    with pytest.raises(ValueError, match="shape"):
        search.fit(x, y, validation_data=(xv[:, :4], yv))
