"""Proxies of a search space's architectures: the strategies' way to score untrained networks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kerasnas.proxies.measures import score


def first_examples(dataset: Any, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` examples of a batched `(x, y)` dataset, as numpy arrays.

    One-hot (or label-smoothed) labels become class indices.
    """
    xs, ys, seen = [], [], 0
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        seen += len(xs[-1])
        if seen >= count:
            break
    if not xs:
        raise ValueError("The training data is empty: there is no example to score proxies on.")
    y = np.concatenate(ys)[:count]
    if np.issubdtype(y.dtype, np.floating) and y.ndim == 2:  # One-hot (smoothed) labels.
        y = y.argmax(-1)
    return np.concatenate(xs)[:count], y


def score_architecture(
    space: Any,
    arch: Any,
    batch: tuple[np.ndarray, np.ndarray],
    proxies: Sequence[str],
    *,
    weights_seed: int,
    seed: int = 0,
) -> dict[str, float]:
    """The proxies of one architecture of `space`, built untrained from `weights_seed`.

    Args:
        space: The `kerasnas.spaces.SearchSpace` that builds the network.
        arch: The architecture.
        batch: The `(x, y)` examples the proxies see (see `kn.proxies.score`).
        proxies: The names of the proxies, from `kn.proxies.PROXIES`.
        weights_seed: Seed of the network's initial weights (Keras's global seed).
        seed: Seed of the draw of the batch's examples.
    """
    keras.utils.set_random_seed(weights_seed)
    model = space.build_model(arch)
    try:
        return score(model, *batch, proxies=proxies, seed=seed)
    finally:
        keras.backend.clear_session()
