"""Tests of kerasnas.data: the embedded digits and the checks on user data."""

import numpy as np
import pytest
import tensorflow as tf

import kerasnas as kn
from kerasnas import data


def test_digits_split_is_fixed_and_disjoint():
    (x, y), (xv, yv), (xt, yt) = kn.data.load("digits")
    assert x.shape == (1077, 8, 8, 1) and xv.shape == (360, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(10))
    (x2, _), _, _ = kn.data.load("digits")
    np.testing.assert_array_equal(x, x2)
    # The three splits partition the 1797 images.
    assert len(x) + len(xv) + len(xt) == 1797


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar11'.*digits"):
        kn.data.load("cifar11")


def test_examine_arrays():
    x = np.zeros((6, 4, 4, 1), dtype="uint8")
    one_hot = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    got = data.examine(x, one_hot)
    assert got.x.dtype == np.float32 and got.input_shape == (4, 4, 1)
    assert got.y.tolist() == [0, 1, 2, 0, 1, 2] and got.num_labels == 3
    assert data.examine(x, np.array([[1], [0], [1], [0], [1], [0]])).num_labels == 2
    with pytest.raises(ValueError, match="one-hot"):
        data.examine(x, np.full((6, 3), 0.5))
    with pytest.raises(ValueError, match="labels are missing"):
        data.examine(x)
    with pytest.raises(ValueError, match="NaN"):
        data.examine(np.full((2, 2, 2, 1), np.nan), [0, 1])
    with pytest.raises(ValueError, match="examples"):
        data.examine(None, [0])


def test_examine_datasets():
    x = np.zeros((10, 4, 4, 1), dtype="float32")
    y = np.arange(10) % 4
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    got = data.examine(batched)
    assert got.is_dataset and got.input_shape == (4, 4, 1) and got.num_labels == 4
    with pytest.raises(ValueError, match="already holds the labels"):
        data.examine(batched, y)
    with pytest.raises(ValueError, match="repeats forever"):
        data.examine(batched.repeat())
    with pytest.raises(ValueError, match=r"\(examples, labels\) pairs"):
        data.examine(tf.data.Dataset.from_tensor_slices(x).batch(2))
