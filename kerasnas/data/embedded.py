"""The embedded default dataset: scikit-learn's 8x8 digits (`load("digits")`)."""

from __future__ import annotations

import numpy as np

from kerasnas.data.checks import Splits


def _load_digits() -> Splits:
    """scikit-learn's 8x8 digits as (N, 8, 8, 1) float32 images in [0, 1].

    The split is fixed (a seeded permutation): 1077 train, 360 validation and
    360 test images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype("float32") / 16.0)[..., None]
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1077], y[:1077]), (x[1077:1437], y[1077:1437]), (x[1437:], y[1437:])
