"""Training recipes: validation, schedules, label smoothing, augmentation, and their use."""

import math

import keras
import numpy as np
import pytest

import kerasnas as kn
from kerasnas import recipe as recipe_module
from tests import tiny


def test_bad_recipes_name_every_problem():
    with pytest.raises(ValueError, match="optimizer must be one of.*'rmsprop'.*warmup_epochs"):
        kn.Recipe(optimizer="rmsprop", epochs=2, warmup_epochs=2)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        kn.Recipe(label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"Recipe has no field \['epoch'\]"):
        kn.Recipe().replace(epoch=3)
    assert kn.Recipe.from_config(kn.Recipe(flip=True).to_config()) == kn.Recipe(flip=True)


def test_cosine_schedule_with_warmup():
    recipe = kn.Recipe(epochs=10, learning_rate=0.1, warmup_epochs=2)
    schedule = recipe.learning_rate_schedule(steps_per_epoch=5)
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.05)  # Linear warm-up.
    assert rates[2] == pytest.approx(0.1)  # The peak after 2 epochs,
    assert rates[3] == pytest.approx(0.05, abs=1e-6)  # half-way down the cosine,
    assert rates[4] == pytest.approx(0.0, abs=1e-6)  # and zero at the end.
    assert kn.Recipe(schedule="constant").learning_rate_schedule(5) == 2e-3


def test_label_smoothing_loss_matches_its_definition():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    labels = np.array([0, 1])
    loss = recipe_module.SparseSmoothedCrossentropy(0.3)
    target = np.full((2, 3), 0.1)  # 0.3 spread over 3 classes ...
    target[[0, 1], labels] += 0.7  # ... plus 0.7 on the true class.
    expected = -(target * np.log(probs)).sum(axis=1).mean()
    assert float(loss(labels, probs)) == pytest.approx(expected, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.label_smoothing == 0.3


def test_augmentation_moves_images_and_keeps_labels():
    (x, y), _ = tiny.digits(64, 10)
    ds = kn.data.to_dataset(x, y, 16)
    recipe = kn.Recipe(translate=0.25, flip=True)
    moved = list(recipe.augment(ds, seed=1).as_numpy_iterator())
    plain = list(ds.as_numpy_iterator())
    assert [m[0].shape for m in moved] == [p[0].shape for p in plain]
    assert all((m[1] == p[1]).all() for m, p in zip(moved, plain, strict=True))
    assert any(not np.allclose(m[0], p[0]) for m, p in zip(moved, plain, strict=True))
    assert kn.Recipe().augment(ds) is ds  # No augmentation, no change.


@pytest.mark.usefixtures("eager")
def test_trials_and_final_training_follow_their_recipes(tmp_path):
    (x, y), (xv, yv) = tiny.digits(192, 64)
    seen = []

    class Inspect(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            opt = self.model.optimizer
            seen.append((type(opt).__name__, type(self.model.loss).__name__, int(opt.iterations)))

    trial_recipe = kn.Recipe(epochs=2, batch_size=64, label_smoothing=0.1, translate=0.1)
    search = kn.Search(
        tiny.fast_space(),
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        recipe=trial_recipe,
        verbose=0,
    )
    search.fit(x, y, validation_data=(xv, yv), callbacks=[Inspect()])
    # Epochs and batch size came from the recipe: 2 epochs of 3 batches each.
    assert seen == [("AdamW", "SparseSmoothedCrossentropy", 6)] * 2
    assert all(r["status"] == "COMPLETED" for r in search.results())

    final = trial_recipe.replace(epochs=3, optimizer="sgd", label_smoothing=0.0, flip=True)
    model = search.retrain(x, y, (xv, yv), recipe=final)
    assert type(model.optimizer).__name__ == "SGD"
    assert int(model.optimizer.iterations) == 3 * math.ceil((192 + 64) / 64)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-7)  # Cosine end.
    with pytest.raises(ValueError, match="Give the number of epochs, or a recipe"):
        kn.Search(tiny.space(), directory=str(tmp_path), verbose=0).retrain(x, y)


def test_retrained_model_with_a_smoothed_loss_exports_and_loads(tmp_path):
    (x, y), (xv, yv) = tiny.digits(128, 32)
    search = kn.Search(
        tiny.fast_space(), max_trials=1, seed=0, directory=str(tmp_path), verbose=0,
        recipe=kn.Recipe(epochs=1, batch_size=64, label_smoothing=0.1),
    )  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv))
    model = search.retrain(x, y, (xv, yv), epochs=1)  # The search's recipe, 1 epoch.
    path = search.export(tmp_path / "final.keras")
    loaded = keras.models.load_model(path)
    assert type(loaded.loss).__name__ == "SparseSmoothedCrossentropy"
    np.testing.assert_allclose(loaded(xv, training=False), model(xv, training=False),
                               atol=1e-6)  # fmt: skip
