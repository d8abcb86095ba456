"""Tests of the NAS-Bench-Macro space."""

import keras
import numpy as np
import pytest

import kerasnas as kn


def test_keys_and_decisions():
    space = kn.spaces.MacroSpace()
    assert [d.name for d in space.decisions] == [f"layer_{i}" for i in range(8)]
    assert space.cardinality() == 3**8
    arch = space.from_key("22212220")
    assert space.key(space.encode(arch)) == "22212220"
    assert arch.choices["layer_3"] == "mb_e3_k3" and arch.choices["layer_7"] == "identity"
    with pytest.raises(kn.OutOfSpaceError, match="8 digits"):
        space.from_key("2221222")
    with pytest.raises(kn.OutOfSpaceError, match="8 digits"):
        space.from_key("22212223")


def test_encode_decode_round_trip():
    space = kn.spaces.MacroSpace()
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        assert kn.Architecture.from_json(arch.to_json()).hash() == arch.hash()


# Every layer skipped, and every op (identity, both blocks) in one network.
@pytest.mark.parametrize("key", ["00000000", "01201201"])
def test_models_build_train_and_export(key, tmp_path):
    space = kn.spaces.MacroSpace(
        num_classes=10, input_shape=(8, 8, 1), init_channels=4, head_channels=16
    )
    model = space.build(space.from_key(key))
    assert model.name == f"macro_{key}"
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype="float32")
    assert model(x, training=False).shape == (4, 10)
    model.fit(x, np.arange(4), epochs=1, verbose=0)
    path = str(tmp_path / f"{key}.keras")
    model.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path)(x, training=False), model(x, training=False), atol=1e-5
    )


def test_identity_layers_add_no_blocks():
    space = kn.spaces.MacroSpace(
        num_classes=10, input_shape=(8, 8, 1), init_channels=4, head_channels=16
    )
    small = space.build(space.from_key("00000000")).count_params()
    big = space.build(space.from_key("22222222")).count_params()
    assert small < big
