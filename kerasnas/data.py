"""Datasets: the embedded default, numpy arrays and `tf.data` pipelines.

`load(name)` returns `((x_train, y_train), (x_val, y_val), (x_test, y_test))`
as numpy arrays; `examine(x, y)` checks training data and reports what a
search space needs to know about it (example shape, class count).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


def _load_digits() -> tuple[Split, Split, Split]:
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


DATASETS: dict[str, Callable[[], tuple[Split, Split, Split]]] = {"digits": _load_digits}


def load(name: str) -> tuple[Split, Split, Split]:
    """Loads a dataset by name as `((x_train, y_train), (x_val, y_val), (x_test, y_test))`.

    Args:
        name: One of `kerasnas.data.DATASETS` (`"digits"`: scikit-learn's
            8x8 digits, embedded, no download).
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {sorted(DATASETS)}.")
    return DATASETS[name]()


@dataclasses.dataclass
class Examined:
    """What `examine` learnt of a dataset.

    Attributes:
        x: The examples (numpy, float32) or the `tf.data.Dataset`.
        y: Integer labels of shape (N,), or None for a dataset.
        input_shape: Shape of one example.
        num_labels: One more than the largest label seen, or None when the
            labels were not read.
        is_dataset: Whether `x` is a `tf.data.Dataset`.
    """

    x: Any
    y: np.ndarray | None
    input_shape: tuple[int, ...]
    num_labels: int | None
    is_dataset: bool


def examine(
    x: Any, y: Any = None, *, what: str = "training data", read_labels: bool = True
) -> Examined:
    """Checks a dataset and describes it.

    Args:
        x: A numpy array of examples (`y` then holds the labels), or a batched
            `tf.data.Dataset` of `(examples, labels)`.
        y: Integer class labels of shape (N,) or (N, 1), or one-hot labels
            of shape (N, classes).
        what: How error messages name this data.
        read_labels: For a dataset, whether to read it once to find the
            number of classes.

    Raises:
        ValueError: naming what is wrong (empty data, mismatched lengths,
            labels that are not class indices, ...).
    """
    if _is_dataset(x):
        if y is not None:
            raise ValueError(f"{what}: a tf.data.Dataset already holds the labels; do not pass y.")
        return _examine_dataset(x, what, read_labels)
    if x is None:
        raise ValueError(f"{what}: no examples were given (x is None).")
    x = np.asarray(x)
    if y is None:
        raise ValueError(f"{what}: labels are missing; pass y along with x.")
    if x.ndim < 2:
        raise ValueError(
            f"{what}: x must hold one example per row, of shape (N, ...). "
            f"Received: x.shape={x.shape}."
        )
    if len(x) == 0:
        raise ValueError(f"{what} is empty: x has 0 examples.")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{what}: x must be numeric. Received dtype {x.dtype}.")
    y = labels_to_indices(y, what)
    if len(y) != len(x):
        raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)} labels.")
    x = x.astype("float32", copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: x holds NaN or infinite values.")
    return Examined(x, y, tuple(x.shape[1:]), int(y.max()) + 1, False)


def labels_to_indices(y: Any, what: str) -> np.ndarray:
    """Integer class indices of shape (N,) from index or one-hot labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{what}: labels of shape {y.shape} must be one-hot rows; pass "
                "integer class indices of shape (N,) otherwise."
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(
            f"{what}: labels must be class indices of shape (N,) or one-hot of "
            f"shape (N, classes). Received: y.shape={y.shape}."
        )
    if len(y) == 0:
        raise ValueError(f"{what} is empty: y has 0 labels.")
    if not np.issubdtype(y.dtype, np.number) or (
        not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0)
    ):
        raise ValueError(
            f"{what}: labels must be integer class indices 0..num_classes-1. "
            f"Received values such as {y[:5].tolist()}."
        )
    y = y.astype("int64")
    if y.min() < 0:
        raise ValueError(f"{what}: labels must be class indices 0..num_classes-1; found {y.min()}.")
    return y


def check_labels_fit(examined: Examined, num_classes: int, what: str) -> None:
    """Raises ValueError when a label is not below `num_classes`."""
    if examined.num_labels is not None and examined.num_labels > num_classes:
        raise ValueError(
            f"{what}: labels must lie in [0, {num_classes}) for num_classes="
            f"{num_classes}, but label {examined.num_labels - 1} was found. Fix "
            "the labels or pass the right num_classes to the space."
        )


def _is_dataset(x: Any) -> bool:
    if type(x).__module__.startswith("numpy"):
        return False
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TensorFlow is a requirement.
        return False
    return isinstance(x, tf.data.Dataset)


def _examine_dataset(dataset: Any, what: str, read_labels: bool) -> Examined:
    import tensorflow as tf

    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            f"{what}: a tf.data.Dataset must yield (examples, labels) pairs. "
            f"Received elements {spec}."
        )
    x_spec = spec[0]
    if x_spec.shape.rank is None or x_spec.shape.rank < 2:
        raise ValueError(
            f"{what}: the dataset's examples must be batched, of shape (batch, ...). "
            f"Received {x_spec.shape}; call dataset.batch(batch_size)."
        )
    input_shape = tuple(x_spec.shape[1:])
    if any(d is None for d in input_shape):
        raise ValueError(f"{what}: examples must have a fixed shape. Received {x_spec.shape}.")
    num_labels = None
    if read_labels:
        if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                f"{what}: the dataset repeats forever, so its classes cannot be "
                "counted; pass num_classes to the space."
            )
        largest, count = -1, 0
        for batch in dataset:
            labels = labels_to_indices(batch[1].numpy(), what)
            largest, count = max(largest, int(labels.max())), count + len(labels)
        if count == 0:
            raise ValueError(f"{what} is empty: the dataset yields no examples.")
        num_labels = largest + 1
    return Examined(dataset, None, input_shape, num_labels, True)
