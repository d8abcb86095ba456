"""The recurrent supernet (ENAS's shared cell) and one-shot search over `RNNCellSpace`."""

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import kerasnas as kn
from kerasnas.oneshot.rnn import RNNSupernet
from tests.rnn_test import TEXT


@pytest.mark.parametrize("shape,classes,layers", [((12,), 9, 2), ((8, 8, 1), 10, 1)])
def test_every_path_computes_its_extracted_model(shape, classes, layers):
    space = kn.spaces.RNNCellSpace(num_nodes=4, units=8, num_layers=layers,
                                   num_classes=classes, input_shape=shape)  # fmt: skip
    net = RNNSupernet(space)
    assert [len(s.candidates) for s in net.slots] == [4, 4, 8, 12]  # (input, activation)
    rng = np.random.default_rng(0)
    if len(shape) == 1:
        x = rng.integers(0, classes, (3, *shape)).astype("float32")
    else:
        x = rng.random((3, *shape), dtype="float32")
    for _ in range(3):
        values = net.values_of(net.sample_indices(rng))
        path = tf.constant(net.path(values))
        expected = tf.nn.softmax(net(x, path, path)).numpy()
        model = net.extract(values)  # The space's model, with the shared weights.
        assert model.count_params() == space.build(space.decode(values)).count_params()
        got = np.asarray(model(x, training=False)).reshape(-1, classes)
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("strategy", ["enas", "darts"])
def test_one_shot_search_of_a_recurrent_cell_for_next_characters(strategy, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    (x, y), (xv, yv), _ = kn.data.load(f"text:{path}", seq_len=12)
    space = kn.spaces.RNNCellSpace(num_nodes=3, units=8)
    search = kn.Search(
        space, strategy, objective=keras_tuner.Objective("val_bits_per_character", "min"),
        max_trials=1, seed=0, directory=str(tmp_path), project_name=strategy, verbose=0,
        supernet_epochs=1, num_candidates=3, retrain_epochs=1, init="supernet",
    )  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), batch_size=32)
    (result,) = search.results()
    assert result["status"] == "COMPLETED"
    trial = search.oracle.trials[result["trial_id"]]
    assert trial.metrics.get_last_value("inherited") == 1.0  # From the shared weights.
    assert np.isfinite(result["metrics"]["val_bits_per_character"])
    ranked = [space.decode(entry["values"]).hash() for entry in search.oracle.ranking]
    assert len(ranked) == len(set(ranked)) >= 1
