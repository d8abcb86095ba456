"""Tests of the NASNet cell space: decisions, encode/decode, building every op."""

import keras
import keras_tuner
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.spaces import ops as ops_module
from tests import tiny


def test_decisions_are_ordered_per_cell_and_block():
    space = kn.spaces.NASNetSpace(num_blocks=2)
    names = [d.name for d in space.decisions]
    assert names[:4] == [
        "normal/block_0/input_a",
        "normal/block_0/op_a",
        "normal/block_0/input_b",
        "normal/block_0/op_b",
    ]
    assert len(names) == 16 and names[8].startswith("reduction/block_0")
    # Block b chooses among the two cell inputs and the b earlier blocks.
    assert space.decision("normal/block_1/input_a").choices == (0, 1, 2)


def test_encode_decode_round_trip_for_200_architectures():
    space = kn.spaces.NASNetSpace()
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        values = space.encode(arch)
        assert all(isinstance(v, (int, str)) for v in values.values())
        back = space.decode(values)
        assert back.hash() == arch.hash()
        assert back.to_json() == arch.to_json()
        assert space.encode(back) == values


def test_encoding_a_relabelled_architecture_gives_the_same_hash():
    space = kn.spaces.NASNetSpace(num_blocks=3)
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = space.sample(rng)
        # Reverse the numbering of the operation vertices (still a valid DAG numbering
        # is not needed: cells accept any vertex order).
        cells = {
            name: tiny.permute(cell, rng.permutation(cell.num_vertices))
            for name, cell in arch.cells.items()
        }
        relabelled = kn.Architecture(cells)
        assert space.decode(space.encode(relabelled)).hash() == arch.hash()


def test_mutate_changes_one_decision():
    space = kn.spaces.NASNetSpace()
    rng = np.random.default_rng(2)
    arch = space.sample(rng)
    for _ in range(30):
        child = space.mutate(arch, rng)
        a, b = space.encode(arch), space.encode(child)
        assert sum(a[k] != b[k] for k in a) == 1


def test_cardinality_and_enumeration_of_a_small_space():
    space = kn.spaces.NASNetSpace(num_blocks=1, ops=["identity"])
    assert space.cardinality() == 16
    archs = list(space.enumerate())
    assert len(archs) == 16
    # (0, 1) and (1, 0) are the same cell: 3 distinct cells per cell type.
    assert len({a.hash() for a in archs}) == 9


@pytest.mark.parametrize("op", sorted(ops_module.OPS))
def test_every_op_builds_and_runs(op):
    # Odd image size: reductions must agree on the rounded-up resolution.
    space = kn.spaces.NASNetSpace(
        num_classes=3,
        input_shape=(7, 7, 2),
        num_blocks=2,
        num_cells=1,
        num_reductions=2,
        filters=4,
        ops=[op],
    )
    arch = space.sample(np.random.default_rng(0))
    model = space.build(arch)
    out = model(np.random.default_rng(1).random((2, 7, 7, 2), dtype="float32"))
    assert tuple(out.shape) == (2, 3)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)
    assert model.optimizer is not None and model.loss == "sparse_categorical_crossentropy"


def test_build_from_keras_tuner_hyperparameters():
    space = kn.spaces.NASNetSpace(
        num_classes=10,
        input_shape=(8, 8, 1),
        num_blocks=2,
        num_cells=1,
        num_reductions=1,
        filters=4,
    )
    arch = space.sample(np.random.default_rng(3))
    hp = keras_tuner.HyperParameters()
    hp.values.update(space.encode(arch))
    model = space.build(hp)
    assert isinstance(model, keras.Model)
    assert model.name.endswith(arch.hash()[:8])
    assert {h.name for h in hp.space} == {d.name for d in space.decisions}


def test_unknown_op_names_are_refused():
    with pytest.raises(ValueError, match=r"Unknown op name\(s\) \['conv_9x9'\]"):
        kn.spaces.NASNetSpace(ops=["sep_conv_3x3", "conv_9x9"])
    with pytest.raises(ValueError, match="empty"):
        kn.spaces.NASNetSpace(ops=[])


def test_values_outside_the_space_are_refused():
    space = kn.spaces.NASNetSpace(num_blocks=2, ops=["identity", "max_pool_3x3"])
    values = space.encode(space.sample(np.random.default_rng(0)))
    bad_op = dict(values, **{"normal/block_0/op_a": "sep_conv_3x3"})
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 'sep_conv_3x3'"):
        space.decode(bad_op)
    bad_input = dict(values, **{"normal/block_1/input_b": 3})
    with pytest.raises(kn.OutOfSpaceError, match="input_b"):
        space.decode(bad_input)
    missing = dict(values)
    del missing["reduction/block_1/op_b"]
    with pytest.raises(kn.OutOfSpaceError, match="Missing"):
        space.decode(missing)
    other = kn.spaces.NASNetSpace(num_blocks=3, ops=["identity", "max_pool_3x3"])
    with pytest.raises(kn.OutOfSpaceError, match="3 blocks, the space has 2"):
        space.encode(other.sample(np.random.default_rng(0)))


def test_space_arguments_are_checked():
    with pytest.raises(ValueError, match="num_blocks"):
        kn.spaces.NASNetSpace(num_blocks=0)
    with pytest.raises(ValueError, match="dropout"):
        kn.spaces.NASNetSpace(dropout=1.5)
    with pytest.raises(ValueError, match="stem_strides must be 1 or 2"):
        kn.spaces.NASNetSpace(stem_strides=3)
    with pytest.raises(ValueError, match="needs images"):
        kn.spaces.NASNetSpace(input_shape=(64,))
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        kn.spaces.NASNetSpace(num_classes=1)


def test_building_needs_shape_and_classes():
    space = kn.spaces.NASNetSpace()
    with pytest.raises(ValueError, match="input_shape and num_classes"):
        space.build(space.sample(np.random.default_rng(0)))


def test_layer_names_are_stable_across_builds():
    space = kn.spaces.NASNetSpace(
        num_classes=10,
        input_shape=(8, 8, 1),
        num_blocks=2,
        num_cells=1,
        num_reductions=1,
        filters=4,
    )
    arch = space.sample(np.random.default_rng(0))
    first = space.build(arch)
    keras.layers.Dense(3)  # Other layers built in between shift Keras's automatic names.
    keras.backend.clear_session()
    second = space.build(arch)
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    assert {"stem_conv", "cell0_normal_in0_conv", "cell1_reduction_in0_conv", "classifier"} <= {
        layer.name for layer in first.layers
    }
    # So morphism operations proposed on one build apply to another.
    ops = kn.morph.random_ops(first, 3, seed=0)
    assert kn.morph.apply(second, ops).count_params() > second.count_params()


def test_a_strided_stem_halves_every_cell_resolution():
    kwargs = dict(num_classes=3, input_shape=(8, 8, 1), num_blocks=2, num_cells=1, filters=4)
    plain = kn.spaces.NASNetSpace(**kwargs)
    strided = kn.spaces.NASNetSpace(stem_strides=2, **kwargs)
    arch = plain.sample(np.random.default_rng(0))
    heights = {}
    for name, space in (("plain", plain), ("strided", strided)):
        model = space.build_model(arch)
        heights[name] = [model.get_layer(n).output.shape[1] for n in ("stem_conv", "head_relu")]
        assert model(np.zeros((2, 8, 8, 1), "float32")).shape == (2, 3)
    assert heights == {"plain": [8, 2], "strided": [4, 1]}
    assert strided.get_config()["stem_strides"] == 2
    assert plain.decode(strided.encode(arch)).hash() == arch.hash()
