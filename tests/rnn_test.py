"""Tests of the ENAS recurrent cell space (`kn.spaces.RNNCellSpace`) and its `ENASCell`."""

import os

import keras
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces.rnn import ENASCell, loose_ends
from kerasnas.training import inputs as inputs_module
from tests import tiny


def small(**kwargs):
    return kn.spaces.RNNCellSpace(**{"num_nodes": 4, "units": 8, **kwargs})


def test_decisions_and_the_cell_of_an_architecture():
    space = small()
    assert [d.name for d in space.decisions] == [
        "node_1/activation",
        "node_2/input", "node_2/activation",
        "node_3/input", "node_3/activation",
        "node_4/input", "node_4/activation",
    ]  # fmt: skip
    assert space.decisions[3].choices == (1, 2)
    values = {"node_1/activation": "tanh", "node_2/input": 1, "node_2/activation": "relu",
              "node_3/input": 1, "node_3/activation": "identity",
              "node_4/input": 3, "node_4/activation": "sigmoid"}  # fmt: skip
    cell = space.decode(values).cells["rnn"]
    assert cell.ops == ("input_0", "tanh", "relu", "identity", "sigmoid", "output")
    # Node 1 reads the input; nodes 2 and 4 are loose ends and feed the output.
    assert [row[5] for row in cell.matrix] == [0, 0, 1, 0, 1, 0]
    assert loose_ends([0, 1, 1, 3]) == [2, 4]
    assert space.encode(space.decode(values)) == values


def test_renumbered_cells_have_the_same_hash_and_encode_back():
    space = small()
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        cell = arch.cells["rnn"]
        perm = [5, 2, 0, 4, 1, 3]
        other = kn.Architecture(cells={"rnn": tiny.permute(cell, perm)})
        assert other.hash() == arch.hash()
        assert space.decode(space.encode(other)).hash() == arch.hash()
        assert kn.Architecture.from_json(arch.to_json()).hash() == arch.hash()
    # Two nodes reading node 1 with the same activation: swapping them is no change.
    a = {"node_1/activation": "tanh", "node_2/input": 1, "node_2/activation": "relu",
         "node_3/input": 1, "node_3/activation": "sigmoid", "node_4/input": 2,
         "node_4/activation": "tanh"}  # fmt: skip
    b = {**a, "node_2/activation": "sigmoid", "node_3/activation": "relu", "node_4/input": 3}
    assert space.decode(a).hash() == space.decode(b).hash()
    assert len({x.hash() for x in space.enumerate()}) < space.cardinality()


def test_architectures_of_other_spaces_are_refused():
    space = small()
    with pytest.raises(OutOfSpaceError, match="exactly one cell"):
        space.encode(kn.Architecture(choices={"layer_0": "identity"}))
    with pytest.raises(OutOfSpaceError, match="4 nodes"):
        space.encode(small(num_nodes=3).sample(np.random.default_rng(0)))


def test_the_cell_computes_the_papers_step():
    inputs, activations = [0, 1, 1, 3], ["tanh", "relu", "identity", "sigmoid"]
    cell = ENASCell(3, inputs, activations)
    x = np.random.default_rng(0).normal(size=(2, 5)).astype("float32")
    h = np.random.default_rng(1).normal(size=(2, 3)).astype("float32")
    out, state = cell(x, [h])
    w_x, w_h = cell.w_x.numpy(), cell.w_h.numpy()
    w = [None, None] + [v.numpy() for v in cell.w_nodes]

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    fns = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "identity": lambda z: z,
           "sigmoid": sigmoid}  # fmt: skip

    def highway(mixed, prev, act):
        gate = sigmoid(mixed[:, :3])
        return gate * fns[act](mixed[:, 3:]) + (1 - gate) * prev

    nodes = {1: highway(x @ w_x + h @ w_h, h, "tanh")}
    for j in (2, 3, 4):
        prev = nodes[inputs[j - 1]]
        nodes[j] = highway(prev @ w[j], prev, activations[j - 1])
    expected = (nodes[2] + nodes[4]) / 2  # The loose ends.
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state[0], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="node 1 reads the cell's input"):
        ENASCell(3, [0, 2], ["tanh", "tanh"])
    with pytest.raises(ValueError, match="unknown activation"):
        ENASCell(3, [0, 1], ["tanh", "gelu"])


@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 3)])
def test_models_build_train_and_export(shape, tmp_path):
    space = small(num_layers=2, num_classes=4, input_shape=shape)
    arch = space.sample(np.random.default_rng(2))
    model = space.build(arch)
    assert model.name == f"rnn_cell_{arch.hash()[:8]}"
    x = np.random.default_rng(0).random((8, *shape), dtype="float32")
    assert model(x, training=False).shape == (8, 4)
    model.fit(x, np.arange(8) % 4, epochs=1, verbose=0)
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-5)


def test_bad_arguments_shapes_and_strategies_are_refused():
    with pytest.raises(ValueError, match="num_nodes must be an integer >= 1"):
        kn.spaces.RNNCellSpace(num_nodes=0)
    with pytest.raises(ValueError, match="dropout must lie in"):
        kn.spaces.RNNCellSpace(dropout=1.0)
    with pytest.raises(ValueError, match=r"sequences of shape \(steps, features\)"):
        kn.spaces.RNNCellSpace(input_shape=(2, 3, 4, 5))
    with pytest.raises(ValueError, match="MorphismOracle cannot search a RNNCellSpace"):
        kn.Search(small(), "morphism", max_trials=2)
    space = small(num_classes=4, input_shape=(6,))
    with pytest.raises(ValueError, match="kind must be 'lstm' or 'gru'"):
        space.baseline("rnn")
    with pytest.raises(ValueError, match="no input shape or classes yet"):
        small().baseline("lstm")
    target = space.build(space.sample(np.random.default_rng(0))).count_params()
    for kind in ("lstm", "gru"):  # The closest weight count its units can give.
        model = space.baseline(kind, params=target)
        units = model.get_layer(f"{kind}_0").units
        nearby = [small(num_classes=4, input_shape=(6,), units=u).baseline(kind).count_params()
                  for u in (units - 1, units + 1)]  # fmt: skip
        assert abs(model.count_params() - target) <= min(abs(n - target) for n in nearby)
        assert space.baseline(kind).get_layer(f"{kind}_0").units == space.units


def test_a_search_on_digits_read_row_by_row(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=128, val=64)
    space = kn.spaces.RNNCellSpace(num_nodes=3, units=8)
    search = kn.Search(space, "grid", max_trials=2, seed=0, directory=str(tmp_path),
                       project_name="rnn", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=64)
    results = search.results()
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED"]
    assert search.space.input_shape == (8, 8, 1) and search.space.num_classes == 10
    assert search.best_model()(xv[:3], training=False).shape == (3, 10)


# -- Language modelling: text data and token sequences ------------------------------
TEXT = "the quick brown fox jumps over the lazy dog. " * 40  # 1,800 characters


def test_text_files_become_next_character_windows(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    (x, y), (xv, yv), (xt, yt) = kn.data.load(f"text:{path}", seq_len=10)
    chars = kn.data.vocabulary(TEXT)
    assert chars == " .abcdefghijklmnopqrstuvwxyz" and len(set(x.ravel())) <= len(chars)
    assert x.dtype == y.dtype == np.int64 and x.shape == y.shape and x.shape[1] == 10
    # Contiguous pieces of 90 / 5 / 5 %, cut into non-overlapping windows.
    assert (len(x), len(xv), len(xt)) == ((1620 - 1) // 10, (90 - 1) // 10, (90 - 1) // 10)
    decode = np.vectorize(lambda t: chars[t])
    assert "".join(decode(x[:2]).ravel()) == TEXT[:20]
    assert "".join(decode(y[0])) == TEXT[1:11]
    assert "".join(decode(xv[0])) == TEXT[1620:1630]
    # A folder is its files in name order; fortune's .dat index files are skipped.
    (tmp_path / "b").write_text("bbbb")
    (tmp_path / "a.dat").write_bytes(b"\x00\x01")
    assert kn.data.read_text(tmp_path) == "bbbb\n" + TEXT


def test_bad_text_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        kn.data.load(f"text:{tmp_path / 'missing.txt'}")
    (tmp_path / "short.txt").write_text("tiny")
    with pytest.raises(ValueError, match="shorter than one window of seq_len=64"):
        kn.data.load(f"text:{tmp_path / 'short.txt'}")
    with pytest.raises(ValueError, match="seq_len must be an integer >= 1"):
        kn.data.load(f"text:{tmp_path / 'short.txt'}", seq_len=0)
    (tmp_path / "bin.txt").write_bytes(b"ab\x00cd")
    with pytest.raises(ValueError, match="not a text file"):
        kn.data.load(f"text:{tmp_path / 'bin.txt'}")
    with pytest.raises(ValueError, match=r"does not take seq_len= \(only 'text:' do"):
        kn.data.load("digits", seq_len=8)


def test_token_sequences_are_examined_as_one_label_per_step():
    x = np.array([[0, 1, 2], [2, 1, 0]])
    seen = kn.data.examine(x, np.array([[1, 2, 5], [1, 0, 1]]))
    assert seen.input_shape == (3,) and seen.num_labels == 6 and seen.y.shape == (2, 3)
    one_hot = kn.data.examine(np.ones((2, 3)), np.eye(3)[[0, 2]])  # Not tokens: one-hot rows.
    assert one_hot.y.tolist() == [0, 2] and one_hot.num_labels == 3
    # A token only the validation text holds would widen the vocabulary beyond the training
    # tokens: refused, naming it, unless the space's num_classes (the vocabulary) holds it.
    inputs = inputs_module.examine_inputs(x, np.array([[1, 2, 0], [1, 0, 1]]), (x, x + 4))
    space = small()
    with pytest.raises(ValueError, match=r"token 6, the largest of 3 such values \(4, 5, 6\)"):
        inputs_module.configure_space(space, inputs)
    space = small(num_classes=7)
    inputs_module.configure_space(space, inputs)
    assert space.num_classes == 7 and space.input_shape == (3,)


def test_a_language_model_search_reports_bits_per_character(tmp_path):
    import keras_tuner

    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    (x, y), (xv, yv), (xt, yt) = kn.data.load(f"text:{path}", seq_len=12)
    space = kn.spaces.RNNCellSpace(num_nodes=2, units=8)  # Vocabulary and length from the data.
    objective = keras_tuner.Objective("val_bits_per_character", "min")
    search = kn.Search(space, "random", objective=objective, max_trials=1, seed=0,
                       directory=str(tmp_path), project_name="lm", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=32)
    assert space.input_shape == (12,) and space.num_classes == len(kn.data.vocabulary(TEXT))
    metrics = search.results()[0]["metrics"]
    assert metrics["val_bits_per_character"] == pytest.approx(
        metrics["val_loss"] / np.log(2), rel=1e-4
    )
    model = keras.models.load_model(search.export(tmp_path / "lm.keras"))
    assert model(xt[:2], training=False).shape == (2, 12, space.num_classes)
    scores = model.evaluate(xt, yt, verbose=0, return_dict=True)
    assert scores["bits_per_character"] == pytest.approx(scores["loss"] / np.log(2), rel=1e-4)


@pytest.mark.skipif(
    not os.path.isdir(kn.data.FORTUNES_DIR),
    reason="Debian's fortunes is not installed (make datasets installs it)",
)
def test_the_fortunes_corpus_loads():
    (x, y), (xv, _), (xt, _) = kn.data.load(f"text:{kn.data.FORTUNES_DIR}", seq_len=100)
    assert len(x) > 10 * len(xv) > 0 and len(xv) == pytest.approx(len(xt), abs=1)
    assert x.max() < len(kn.data.vocabulary(kn.data.read_text(kn.data.FORTUNES_DIR)))
