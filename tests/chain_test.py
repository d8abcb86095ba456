"""Tests of the plain convolution chain space."""

import keras
import keras_tuner
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.spaces.chain import ChainSpace


def _values(filters, kernels):
    values = {"num_layers": len(filters)}
    for i, (f, k) in enumerate(zip(filters, kernels, strict=True)):
        values[f"layer_{i}/filters"] = f
        values[f"layer_{i}/kernel"] = k
    return values


def test_decisions_are_conditional_on_the_depth():
    space = ChainSpace(max_layers=3, filters=(8, 16), kernels=(3, 5))
    names = [d.name for d in space.decisions]
    assert names == [
        "num_layers",
        "layer_0/filters",
        "layer_0/kernel",
        "layer_1/filters",
        "layer_1/kernel",
        "layer_2/filters",
        "layer_2/kernel",
    ]
    assert space.decision("num_layers").choices == (1, 2, 3)
    assert space.decision("layer_1/kernel").parent == "num_layers"
    assert space.decision("layer_1/kernel").parent_values == (2, 3)
    arch = space.decode(_values([8], [3]))
    assert arch.choices == {"num_layers": 1, "layer_0/filters": 8, "layer_0/kernel": 3}
    assert not arch.cells


def test_encode_decode_round_trip():
    space = ChainSpace()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        arch = space.sample(rng)
        values = space.encode(arch)
        assert set(values) == {d.name for d in space.active_decisions(values)}
        assert space.decode(values) == arch
        assert kn.Architecture.from_json(arch.to_json()).hash() == arch.hash()
        seen.add(values["num_layers"])
    assert seen == {1, 2, 3, 4}


def test_mutation_and_enumeration():
    space = ChainSpace(max_layers=2, filters=(8, 16), kernels=(3,))
    archs = list(space.enumerate())
    # 2 one-layer chains and 4 two-layer chains.
    assert len({a.hash() for a in archs}) == 6
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    for _ in range(10):
        child = space.mutate(arch, rng)
        assert child.hash() != arch.hash()
        space.encode(child)


def test_values_outside_the_space_are_refused():
    space = ChainSpace(max_layers=2)
    with pytest.raises(kn.OutOfSpaceError, match="Missing a value for decision 'layer_1/kernel'"):
        space.decode(
            {"num_layers": 2, "layer_0/filters": 16, "layer_0/kernel": 3, "layer_1/filters": 16}
        )
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 7"):
        space.decode(_values([16], [7]))
    extra = kn.Architecture(choices={**_values([16], [3]), "layer_1/filters": 16})
    with pytest.raises(kn.OutOfSpaceError, match=r"\['layer_1/filters'\] are not decisions"):
        space.encode(extra)
    cell = {"matrix": [[0, 1], [0, 0]], "ops": ["input_0", "output"]}
    with pytest.raises(kn.OutOfSpaceError, match="no cells"):
        space.encode(kn.Architecture(cells={"normal": cell}, choices=_values([16], [3])))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="max_layers"):
        ChainSpace(max_layers=0)
    with pytest.raises(ValueError, match="filters"):
        ChainSpace(filters=(16, 16))
    with pytest.raises(ValueError, match="kernels"):
        ChainSpace(kernels=())
    with pytest.raises(ValueError, match="pool_every"):
        ChainSpace(pool_every=-1)
    with pytest.raises(ValueError, match="needs images"):
        ChainSpace(input_shape=(64,))
    config = ChainSpace(max_layers=3, pool_every=0).get_config()
    assert config["class"] == "ChainSpace" and config["max_layers"] == 3
    assert config["pool_every"] == 0


def test_layers_have_fixed_readable_names():
    space = ChainSpace(num_classes=10, input_shape=(8, 8, 1), pool_every=2)
    arch = space.decode(_values([16, 32, 16], [3, 5, 3]))
    names = [layer.name for layer in space.build(arch).layers]
    assert names == [
        "input",
        "conv_0",
        "bn_0",
        "relu_0",
        "conv_1",
        "bn_1",
        "relu_1",
        "pool_1",
        "conv_2",
        "bn_2",
        "relu_2",
        "gap",
        "classifier",
    ]
    # The same names whatever was built before in the session.
    again = [layer.name for layer in space.build(arch).layers]
    assert again == names
    model = space.build(arch)
    assert model.get_layer("conv_1").kernel.shape == (5, 5, 16, 32)
    assert not model.get_layer("conv_1").use_bias
    assert model.get_layer("bn_0").momentum == 0.9
    assert model.name == f"chain_{arch.hash()[:8]}"
    no_pool = ChainSpace(num_classes=10, input_shape=(8, 8, 1), pool_every=0).build(arch)
    assert not any(layer.name.startswith("pool") for layer in no_pool.layers)


def test_models_build_train_and_export(tmp_path):
    space = ChainSpace(num_classes=10, input_shape=(8, 8, 1), filters=(4, 8))
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype="float32")
    y = np.arange(8)
    for seed in range(3):
        arch = space.sample(np.random.default_rng(seed))
        model = space.build(arch)
        assert model.optimizer is not None and model.loss == "sparse_categorical_crossentropy"
        out = np.asarray(model(x, training=False))
        assert out.shape == (8, 10)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
        model.fit(x, y, epochs=1, verbose=0)
        path = str(tmp_path / f"{seed}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
        np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-5)


def test_build_from_keras_tuner_hyperparameters():
    space = ChainSpace(num_classes=3, input_shape=(8, 8, 1), filters=(4,), kernels=(3,))
    hp = keras_tuner.HyperParameters()
    hp.values.update(_values([4, 4], [3, 3]))
    model = space.build(hp)
    assert sum(layer.name.startswith("conv_") for layer in model.layers) == 2
    assert {h.name for h in hp.space} == {d.name for d in space.decisions}
