"""Tests of the NASNet supernet: paths, extraction to standalone models, errors."""

import collections

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import kerasnas as kn
from kerasnas.oneshot.nasnet import NASNetSupernet
from kerasnas.oneshot.train import OneShotTrainer, single_path
from tests import tiny

SHAPE = dict(num_classes=10, input_shape=(8, 8, 1))
# Normal, reduction, normal: the last cell reads both a reduced and an unreduced tensor.
SKELETON = dict(num_blocks=2, num_cells=1, num_reductions=1, filters=8)


def _digits():
    d = load_digits()
    return (d.images / 16.0).astype("float32")[..., None], d.target.astype("int32")


@pytest.fixture(scope="module")
def trained():
    x, y = _digits()
    space = kn.spaces.NASNetSpace(**SHAPE, **SKELETON, ops=("sep_conv_3x3", "identity"))
    net = NASNetSupernet(space)
    ds = tf.data.Dataset.from_tensor_slices((x[:512], y[:512])).batch(64, drop_remainder=True)
    steps = 2 * 8
    trainer = OneShotTrainer(net, total_steps=steps)
    rng = np.random.default_rng(0)
    step = 0
    with tiny.eagerly():  # The tests compare numbers, the same in either mode.
        for _ in range(2):
            step, loss, _ = trainer.train_epoch(ds, single_path(net), rng, step, steps)
    assert np.isfinite(loss)
    return space, net, trainer, ds, x[1400:1464]


def _layer_types(model):
    return collections.Counter(type(layer).__name__ for layer in model.layers)


def _check_extraction(space, net, values, x, calibrate):
    path = net.path(values)
    calibrate(path)
    model = net.extract(values)
    reference = space.build_model(space.decode(values))
    assert model.count_params() == reference.count_params()
    assert _layer_types(model) == _layer_types(reference)
    assert model.name == reference.name
    assert model.layers[-1].name == "classifier"
    expected = tf.nn.softmax(net(x, path, path)).numpy()
    np.testing.assert_allclose(model(x, training=False).numpy(), expected, atol=1e-4)


def _with_inputs(values, inputs):
    return {**values, **inputs}


def test_extracted_paths_compute_the_supernet(trained):
    space, net, trainer, ds, x = trained
    rng = np.random.default_rng(1)
    sampled = [net.values_of(net.sample_indices(rng)) for _ in range(2)]
    # Block 1 reads block 0 (only block 1 is concatenated) or not (both are).
    chained = _with_inputs(
        sampled[0], {"normal/block_1/input_a": 2, "reduction/block_1/input_b": 2}
    )
    unchained = _with_inputs(
        sampled[1],
        {
            f"{c}/block_1/input_{b}": i
            for c in ("normal", "reduction")
            for b, i in zip("ab", (0, 1), strict=True)
        },
    )
    for values in [*sampled, chained, unchained]:
        _check_extraction(space, net, values, x, lambda path: trainer.calibrate(ds, path, 2))


def test_other_ops_and_a_strided_stem_extract_exactly():
    x, _ = _digits()
    space = kn.spaces.NASNetSpace(
        **SHAPE,
        **{**SKELETON, "num_blocks": 1, "filters": 4, "stem_strides": 2},
        ops=("sep_conv_5x5", "conv_1x1", "conv_3x3", "max_pool_3x3", "avg_pool_3x3"),
    )
    net = NASNetSupernet(space)
    rng = np.random.default_rng(2)

    def calibrate(path):
        net.reset_statistics()
        for start in range(0, 128, 64):
            net(x[start : start + 64], path, path, calibrate=True)

    for _ in range(2):
        values = net.values_of(net.sample_indices(rng))
        _check_extraction(space, net, values, x[1400:1464], calibrate)


def test_slots_indices_and_kernels(trained):
    space, net, _, _, _ = trained
    assert net.num_slots == 2 * 2 * space.num_blocks
    slot = net.slots[2]
    assert slot.name == "normal/block_1/branch_a"
    assert slot.decisions == ("normal/block_1/input_a", "normal/block_1/op_a")
    assert slot.candidates == tuple((i, op) for i in range(3) for op in space.ops)
    assert len(slot.candidates) == 3 * len(space.ops)
    rng = np.random.default_rng(3)
    names = {d.name for d in space.decisions}
    for _ in range(20):
        indices = net.sample_indices(rng)
        values = net.values_of(indices)
        assert set(values) == names
        assert net.indices(values) == indices
        assert net.indices(space.encode(space.decode(values))) == indices
        assert net.path(values).sum() == net.num_slots
    kernels = net.candidate_kernels()
    for slot, per_slot in zip(net.slots, kernels, strict=True):
        cells = 2 if slot.name.startswith("normal") else 1
        reduction = slot.name.startswith("reduction")
        for (source, op), found in zip(slot.candidates, per_slot, strict=True):
            if op == "sep_conv_3x3":
                assert len(found) == 2 * cells  # Depthwise and pointwise, in every cell.
            elif op == "identity" and reduction and source < 2:
                assert len(found) == cells  # The strided 1x1 convolution.
            else:
                assert found == []
    # The stem, each cell's two input calibrations, the classifier.
    shared = net.shared_kernels()
    assert len(shared) == 1 + 2 * 3 + 1
    assert sorted(len(v.shape) for v in shared) == [2] + [4] * 7


def test_errors():
    with pytest.raises(ValueError, match="input_shape and num_classes"):
        NASNetSupernet(kn.spaces.NASNetSpace(**SKELETON))
    with pytest.raises(ValueError, match="needs a NASNetSpace"):
        NASNetSupernet(kn.spaces.NASBench201Space(**SHAPE))
