"""In-memory numpy splits as batched, prefetched `tf.data` pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerasnas.data.checks import Splits


def _resize_numpy(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    chunks = [
        tf.image.resize(x[i : i + 1024], size, antialias=True).numpy()
        for i in range(0, len(x), 1024)
    ]
    return np.clip(np.concatenate(chunks), 0.0, 1.0).astype("float32")


def to_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False, seed: int | None = 0
) -> Any:
    """A batched, prefetched `tf.data.Dataset` of in-memory arrays.

    The arrays are held once as tensors (so every epoch reads memory, like a
    cache) and batches are gathered by index; with `shuffle`, the order is
    drawn anew each epoch from a sequence fixed by `seed`.

    Two batches are prefetched and tf.data's autotuning is off: gathering a
    batch costs microseconds, and on a busy CPU an autotuned pipeline held
    each epoch's start (and `fit`'s return) for up to 11 s on the way its
    iterator was torn down (benchmarks/time_budget.py).
    """
    import tensorflow as tf

    xs, ys = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def _numpy_datasets(splits: Splits, batch_size: int, seed: int | None) -> tuple[Any, Any, Any]:
    """Batched, prefetched datasets of in-memory splits; train is reshuffled each epoch."""
    return tuple(
        to_dataset(x, y, batch_size, shuffle=i == 0, seed=seed) for i, (x, y) in enumerate(splits)
    )
