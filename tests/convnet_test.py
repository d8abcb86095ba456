"""Tests of the small-image convolutional network space."""

import keras
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.spaces.convnet import ConvNetSpace


def _values(**changes):
    values = {
        "width": 16,
        "residual": False,
        "stage_0/depth": 1,
        "stage_0/kernel": 3,
        "stage_1/depth": 1,
        "stage_1/kernel": 3,
        "head": "gap",
        "dropout": 0.0,
    }
    return {**values, **changes}


def test_decisions_round_trip_and_mutate():
    space = ConvNetSpace(kernels=(3, 5))
    assert [d.name for d in space.decisions] == list(_values())
    assert space.cardinality() == 3 * 2 * (3 * 2) ** 2 * 2 * 3
    rng = np.random.default_rng(0)
    heads = set()
    for _ in range(50):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        assert kn.Architecture.from_json(arch.to_json()).hash() == arch.hash()
        assert space.mutate(arch, rng).hash() != arch.hash()
        heads.add(arch.choices["head"])
    assert heads == {"gap", "dense"}


def test_residual_is_canonical_when_no_stage_has_a_second_layer():
    space = ConvNetSpace()
    plain = space.decode(_values())
    assert space.decode(_values(residual=True)) == plain  # The same network: one hash.
    assert space.decode(_values(residual=True)).choices["residual"] is False
    deep = _values(**{"stage_1/depth": 2})
    assert space.decode({**deep, "residual": True}).hash() != space.decode(deep).hash()
    # A mutation never lands on the same network under another name.
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert space.mutate(plain, rng).hash() != plain.hash()


def test_models_follow_the_choices():
    space = ConvNetSpace(num_classes=10, input_shape=(28, 28, 1), dense_units=32)
    model = space.build(space.decode(_values()))
    names = [layer.name for layer in model.layers]
    assert "stage0_conv0_conv" in names and "stage1_pool" in names and "gap" in names
    assert "dropout" not in names and not any(n.endswith("_add") for n in names)
    assert model.get_layer("stage1_conv0_conv").filters == 32  # width * 2**stage

    deep = space.build(
        space.decode(
            _values(width=24, residual=True, **{"stage_1/depth": 3}, head="dense", dropout=0.5)
        )
    )
    names = [layer.name for layer in deep.layers]
    # The residual adds join the layers after each stage's first.
    assert [n for n in names if n.endswith("_add")] == ["stage1_conv1_add", "stage1_conv2_add"]
    assert deep.get_layer("dense").units == 32
    assert deep.get_layer("dropout").rate == 0.5
    assert deep.get_layer("stage0_conv0_conv").filters == 24
    out = np.asarray(deep(np.zeros((2, 28, 28, 1), "float32"), training=False))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_a_short_search_learns_digits(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    keras.utils.set_random_seed(0)
    search = kn.Search(
        ConvNetSpace(), max_trials=2, seed=0, directory=str(tmp_path), project_name="convnet"
    )
    search.fit(x[:1200], y[:1200], validation_data=(x[1200:], y[1200:]), epochs=4,
               batch_size=64, verbose=0)  # fmt: skip
    best = search.best_model()
    _, acc = best.evaluate(x[1200:], y[1200:], verbose=0)
    assert acc > 0.8, acc


def test_bad_arguments_and_values_are_refused():
    with pytest.raises(ValueError, match="num_stages must be an integer >= 1"):
        ConvNetSpace(num_stages=0)
    with pytest.raises(ValueError, match="widths must be distinct values, each positive"):
        ConvNetSpace(widths=(16, 16))
    with pytest.raises(ValueError, match=r"dropouts must be distinct values, each in \[0, 1\)"):
        ConvNetSpace(dropouts=(0.0, 1.0))
    with pytest.raises(ValueError, match="widths must be a list of numbers"):
        ConvNetSpace(widths=("wide",))
    with pytest.raises(ValueError, match="needs images of at least 4x4 pixels"):
        ConvNetSpace(num_stages=3, input_shape=(3, 3, 1))
    space = ConvNetSpace()
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 7"):
        space.decode(_values(width=7))
    with pytest.raises(kn.OutOfSpaceError, match=r"\['depth'\] are not decisions"):
        space.decode({**_values(), "depth": 2})
    with pytest.raises(kn.OutOfSpaceError, match="Missing a value for decision 'head'"):
        space.decode({k: v for k, v in _values().items() if k != "head"})
