"""Tests of network morphisms: every transform keeps the parent's function."""

import keras
import numpy as np
import pytest

import kerasnas as kn
from kerasnas import morph
from kerasnas.spaces.chain import ChainSpace
from tests import tiny

TOLERANCE = 1e-4
X = np.random.default_rng(123).normal(size=(6, 8, 8, 1)).astype("float32")


def _randomize_batch_norms(model, seed=0):
    """Gives every BatchNorm non-trivial parameters and moving statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c),
                    rng.normal(0, 0.3, c),
                    rng.normal(0, 0.3, c),
                    rng.uniform(0.5, 2.0, c),
                ]
            )
    return model


def chain_model(num_layers=4, filters=8):
    space = ChainSpace(
        num_classes=10, input_shape=(8, 8, 1), filters=(filters,), learning_rate=0.01
    )
    values = {"num_layers": num_layers}
    for i in range(num_layers):
        values[f"layer_{i}/filters"] = filters
        values[f"layer_{i}/kernel"] = 3
    return _randomize_batch_norms(space.build(space.decode(values)))


def nasnet_model(seed):
    space = kn.spaces.NASNetSpace(
        num_classes=10,
        input_shape=(8, 8, 1),
        num_blocks=2,
        num_cells=1,
        num_reductions=1,
        filters=8,
    )
    return _randomize_batch_norms(space.build(space.sample(np.random.default_rng(seed))), seed)


def gap(parent, child, x=X):
    return float(
        np.max(np.abs(np.asarray(child(x, training=False)) - np.asarray(parent(x, training=False))))
    )


CHAIN_OPS = [
    "deepen:conv_2",
    "deepen:conv_1:5",
    "deepen:relu_0",
    "widen:conv_0:3",
    "widen:conv_1:8",
    "widen:conv_3:16",
    "skip:conv_0:conv_3",
    "skip:conv_0:conv_2",
    "skip:conv_1:conv_2",
    "skipcat:conv_0:conv_2",
    "skipcat:conv_1:conv_3",
]


def test_every_transform_preserves_function_on_chains():
    parent = chain_model()
    for op in CHAIN_OPS:
        child = morph.apply(parent, [op])
        assert gap(parent, child) < TOLERANCE, op


@pytest.mark.parametrize("seed", [0, 3])
def test_every_transform_preserves_function_on_nasnet(seed):
    parent = nasnet_model(seed)
    seen = set()
    for kind in morph.KINDS:
        for draw in range(3):
            (op,) = morph.random_ops(parent, 1, seed=draw, kinds=[kind])
            if op in seen:
                continue
            seen.add(op)
            assert op.startswith(kind + ":")
            child = morph.apply(parent, [op])
            assert gap(parent, child) < TOLERANCE, op
    assert len(seen) >= 10


def test_random_chains_of_five_preserve_function():
    for seed in range(3):
        parent = chain_model()
        ops = morph.random_ops(parent, 5, seed=seed)
        assert len(ops) == 5
        assert gap(parent, morph.apply(parent, ops)) < TOLERANCE, ops
    for seed in range(3):
        parent = nasnet_model(seed)
        ops = morph.random_ops(parent, 5, seed=seed)
        assert gap(parent, morph.apply(parent, ops)) < TOLERANCE, ops


def test_ops_chain_over_generations():
    # A child's ops may name layers that an earlier generation added.
    parent = chain_model(num_layers=2)
    child = morph.apply(parent, ["deepen:conv_0", "widen:deep0_conv:4"])
    grandchild = morph.apply(child, ["skip:conv_0:conv_1", "deepen:deep0_conv"])
    assert "deep1_conv" in [layer.name for layer in grandchild.layers]
    assert gap(parent, grandchild) < TOLERANCE


def test_random_ops_are_deterministic_given_a_seed():
    parent = chain_model()
    first = morph.random_ops(parent, 5, seed=7)
    assert morph.random_ops(parent, 5, seed=7) == first
    assert morph.random_ops(chain_model(), 5, seed=7) == first
    draws = {tuple(morph.random_ops(parent, 5, seed=s)) for s in range(6)}
    assert len(draws) > 1
    kinds = {op.split(":")[0] for ops in draws for op in ops}
    assert kinds == {"deepen", "widen", "skip", "skipcat"}  # No cells: no blocks.
    assert morph.random_ops(parent, 0, seed=0) == []
    with pytest.raises(ValueError, match="Unknown morphism kinds"):
        morph.random_ops(parent, 1, kinds=["shrink"])


def test_widen_copies_units_and_divides_outgoing_weights():
    parent = chain_model()
    child = morph.apply(parent, ["widen:conv_1:8"])
    old, new = parent.get_layer("conv_1").kernel.numpy(), child.get_layer("conv_1").kernel.numpy()
    assert new.shape == (3, 3, 8, 16)
    np.testing.assert_array_equal(new[..., :8], old)
    copied = [
        int(np.flatnonzero((old == new[..., j][..., None]).all(axis=(0, 1, 2)))[0])
        for j in range(8, 16)
    ]
    for bn_weight_old, bn_weight_new in zip(
        parent.get_layer("bn_1").get_weights(), child.get_layer("bn_1").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(bn_weight_new[8:], bn_weight_old[copied])
    counts = np.bincount(copied, minlength=8) + 1
    nxt_old = parent.get_layer("conv_2").kernel.numpy()
    nxt_new = child.get_layer("conv_2").kernel.numpy()
    np.testing.assert_allclose(nxt_new[:, :, :8], nxt_old / counts[:, None], rtol=1e-6)
    # Parameters: 8 more filters in conv_1 (3*3*8 each), 4 BatchNorm values each,
    # and 8 more input channels of conv_2 (3*3*8 each).
    assert child.count_params() - parent.count_params() == 8 * (72 + 4 + 72)


def test_deepen_adds_an_identity_layer():
    parent = chain_model()
    child = morph.apply(parent, ["deepen:conv_1:5"])
    names = [layer.name for layer in child.layers]
    assert names[names.index("relu_1") + 1 : names.index("relu_1") + 4] == [
        "deep0_conv",
        "deep0_bn",
        "deep0_relu",
    ]
    assert child.count_params() - parent.count_params() == 5 * 5 * 8 * 8 + 4 * 8
    # After a block that does not end in a ReLU, no ReLU is added.
    cell = nasnet_model(0)
    sep = next(
        layer.name for layer in cell.layers if isinstance(layer, keras.layers.SeparableConv2D)
    )
    grown = morph.apply(cell, [f"deepen:{sep}"])
    assert "deep0_bn" in [layer.name for layer in grown.layers]
    assert "deep0_relu" not in [layer.name for layer in grown.layers]


def test_deepen_is_close_to_an_identity_in_training_mode_too():
    # In training mode BatchNorm normalises with the batch's statistics; the new
    # BatchNorm starts from the parent's estimated statistics of its input, so
    # the deepened block stays close to an identity there as well.
    parent = chain_model()
    (x, _), _ = tiny.digits(64, 1)
    child = morph.apply(parent, ["deepen:conv_1"])
    bn = child.get_layer("deep0_bn")
    gamma, beta, mean, var = bn.get_weights()
    np.testing.assert_allclose(gamma, np.sqrt(var + bn.epsilon), rtol=1e-6)
    np.testing.assert_allclose(beta, mean)
    assert np.all(mean > 0)  # A ReLU's output has a positive mean.
    # (Calls in training mode update the moving statistics: compare after the checks.)
    before = keras.Model(parent.inputs[0], parent.get_layer("relu_1").output)(x, training=True)
    after = keras.Model(child.inputs[0], child.get_layer("deep0_relu").output)(x, training=True)
    before, after = np.asarray(before), np.asarray(after)
    relative = np.abs(after - before).mean() / np.abs(before).mean()
    assert relative < 0.3, relative


def test_noise_breaks_symmetry_and_keeps_function():
    parent = chain_model()
    child = morph.apply(parent, ["widen:conv_1:8"], noise=0.1)
    assert gap(parent, child) < TOLERANCE
    plain = morph.apply(parent, ["widen:conv_1:8"])
    assert not np.allclose(
        child.get_layer("conv_2").kernel.numpy(), plain.get_layer("conv_2").kernel.numpy()
    )


def test_child_is_compiled_like_the_parent_and_trains():
    parent = chain_model()
    x, y = X, np.arange(len(X)) % 10
    parent.fit(x, y, epochs=1, verbose=0)
    child = morph.apply(parent, morph.random_ops(parent, 3, seed=1))
    assert gap(parent, child) < TOLERANCE  # Statistics and weights from real training.
    assert type(child.optimizer) is type(parent.optimizer)
    assert float(child.optimizer.learning_rate) == pytest.approx(0.01)
    assert child.optimizer is not parent.optimizer
    assert child.loss == parent.loss == "sparse_categorical_crossentropy"
    assert child.get_compile_config()["metrics"] == ["accuracy"]
    before = child.evaluate(x, y, verbose=0)[0]
    history = child.fit(x, y, epochs=2, verbose=0)
    assert history.history["loss"][-1] != pytest.approx(before)
    assert child.evaluate(x, y, verbose=0)[0] != pytest.approx(before)


def test_apply_is_reproducible():
    parent = nasnet_model(2)
    ops = morph.random_ops(parent, 5, seed=4, kinds=["widen", "block", "skipcat"])
    first, second = morph.apply(parent, ops), morph.apply(parent, ops)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = morph.apply(parent, ops, seed=1)
    assert any(
        a.shape == b.shape and not np.array_equal(a, b)
        for a, b in zip(first.get_weights(), other.get_weights(), strict=True)
    )


def test_widen_dense_layers():
    inputs = keras.Input((5,))
    x = keras.layers.Dense(6, name="hidden")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    parent = _randomize_batch_norms(keras.Model(inputs, outputs))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    child = morph.apply(parent, ["widen:hidden:5"], noise=0.05)
    assert child.get_layer("out").kernel.shape == (11, 3)
    assert gap(parent, child, x) < TOLERANCE
    assert morph.random_ops(parent, 1, seed=0)[0].startswith("widen:hidden:")
    with pytest.raises(ValueError, match="admits no morphism"):
        morph.random_ops(parent, 1, seed=0, kinds=["deepen", "skip"])


def test_parent_is_left_unchanged():
    parent = chain_model()
    weights = [w.copy() for w in parent.get_weights()]
    names = [layer.name for layer in parent.layers]
    morph.apply(parent, ["widen:conv_1:8", "deepen:conv_2", "skipcat:conv_0:conv_3"])
    assert [layer.name for layer in parent.layers] == names
    for old, new in zip(weights, parent.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_child_exports_and_reloads(tmp_path):
    parent = nasnet_model(1)
    ops = morph.random_ops(parent, 5, seed=2)
    child = morph.apply(parent, ops)
    path = str(tmp_path / "child.keras")
    child.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(X, training=False), child(X, training=False), atol=1e-6)
    # Names survive the round trip, so ops proposed on the saved child apply to the loaded one.
    assert morph.random_ops(loaded, 2, seed=0) == morph.random_ops(child, 2, seed=0)


def test_block_after_a_single_block_cell_output():
    space = kn.spaces.NASNetSpace(
        num_classes=10,
        input_shape=(8, 8, 1),
        num_blocks=2,
        num_cells=1,
        num_reductions=1,
        filters=8,
    )
    values = space.encode(space.sample(np.random.default_rng(0)))
    values.update({"normal/block_1/input_a": 2, "normal/block_1/input_b": 2})
    parent = _randomize_batch_norms(space.build(space.decode(values)))
    adds = [layer.name for layer in parent.layers if isinstance(layer, keras.layers.Add)]
    # The first cell ends in its second block (an Add), not a Concatenate.
    op = f"block:{adds[1]}:{adds[0]}:sep_conv_3x3:{adds[1]}:max_pool_3x3"
    child = morph.apply(parent, [op])
    assert gap(parent, child) < TOLERANCE
    assert {"block0_add", "block0_cat"} <= {layer.name for layer in child.layers}


@pytest.mark.parametrize(
    "op, message",
    [
        ("shrink:conv_1", "unknown op kind 'shrink'"),
        ("widen:conv_1", "widen ops read 'widen:LAYER:N'"),
        ("widen:conv_9:4", "no layer named 'conv_9'"),
        ("widen:bn_1:4", "widen needs a Conv2D, SeparableConv2D or Dense layer; 'bn_1'"),
        ("widen:conv_1:many", "N must be an integer"),
        ("widen:conv_1:0", "N must be at least 1"),
        ("widen:classifier:2", "reach the model output 'classifier'"),
        ("deepen:gap", "deepen needs a Conv2D"),
        ("deepen:conv_1:4", "KERNEL must be a positive odd size"),
        ("skip:conv_3:conv_1", "would make a cycle"),
        ("skip:conv_0:conv_1", "'conv_1' already reads 'relu_0'"),
        ("skipcat:conv_0:bn_3", "skipcat needs a Conv2D, SeparableConv2D or Dense target"),
        ("block:gap:conv_0:identity:conv_1:identity", "'gap' is not a 4-D cell output"),
        ("block:relu_3:relu_1:sep_conv_9x9:relu_2:identity", "unknown op 'sep_conv_9x9'"),
    ],
)
def test_bad_ops_are_refused_with_the_reason(op, message):
    parent = chain_model()
    with pytest.raises(ValueError, match=f"Cannot apply '{op}'") as info:
        morph.apply(parent, ["deepen:conv_2", op])
    assert message in str(info.value)
    assert isinstance(info.value, kn.errors.MorphError)


def test_only_strings_and_functional_models():
    parent = chain_model()
    with pytest.raises(ValueError, match="is a string"):
        morph.apply(parent, [("widen", "conv_1", 4)])
    with pytest.raises(ValueError, match="functional"):
        morph.apply(keras.layers.Dense(3), ["widen:conv_1:4"])
    # A single op string is accepted, and no op gives a copy.
    assert gap(parent, morph.apply(parent, "widen:conv_1:4")) < TOLERANCE
    copy = morph.apply(parent, [])
    assert copy is not parent and gap(parent, copy) == 0.0


def test_the_same_architecture_has_the_same_layer_names_whatever_was_built_before():
    # MacroSpace leaves layer names to Keras's session counter (conv2d_15, ...): a morph
    # op names a layer, so every build of an architecture must read the same names.
    space = kn.spaces.MacroSpace(stages=(1, 1, 1), init_channels=8, head_channels=16,
                                 num_classes=10, input_shape=(8, 8, 1))  # fmt: skip
    arch = space.sample(np.random.default_rng(0))
    keras.backend.clear_session()
    first = morph.graph.from_model(space.build(arch))
    space.build(space.sample(np.random.default_rng(1)))  # Advances the counters.
    second = morph.graph.from_model(space.build(arch))
    assert list(first.nodes) == list(second.nodes)
    assert "conv2d" in first.nodes and "conv2d_1" in first.nodes
    # The renamed graph builds, and an op naming one of its layers applies.
    child = morph.apply(space.build(arch), ["widen:conv2d:4"], compile=False)
    assert child.get_layer("conv2d").filters == 12
