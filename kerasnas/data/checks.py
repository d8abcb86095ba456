"""Checks on data: labels, images, validation sizes, and `examine` for `Search.fit`.

`examine(x, y)` checks training data (numpy arrays or a batched
`tf.data.Dataset`, of which it reads the first `PEEK_BATCHES` batches) and
reports what a search space needs to know about it (example shape, class
count); the loaders use the label and image checks and carve validation data
from the end of a training split with `_carve`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

Split = tuple[np.ndarray, np.ndarray]
Splits = tuple[Split, Split, Split]

#: Share of the training split kept for validation when a dataset has no
#: validation split (`"tfds:"` and `"npz:"` datasets).
DEFAULT_VALIDATION_FRACTION = 0.1

#: How much of a `tf.data.Dataset` `examine` reads to check its examples and
#: labels: its first `PEEK_BATCHES` batches, or fewer once `PEEK_EXAMPLES`
#: examples have been read. (To count the classes it reads every label.)
PEEK_BATCHES = 50
PEEK_EXAMPLES = 10_000


def _default_validation_fraction() -> float:
    """`DEFAULT_VALIDATION_FRACTION` as `kerasnas.data` has it now (where users set it)."""
    from kerasnas import data as package

    return package.DEFAULT_VALIDATION_FRACTION


# -- Images ------------------------------------------------------------------
def _check_images(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{what}: images must be numeric. Received dtype {x.dtype}.")
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(
            f"{what}: images must be a non-empty array of shape (N, H, W) or (N, H, W, C). "
            f"Received shape {x.shape}."
        )
    return x[..., None] if x.ndim == 3 else x


def _to_float_images(x: np.ndarray, what: str) -> np.ndarray:
    """float32 images: uint8/uint16 scaled to [0, 1] by their largest value, others kept."""
    if x.dtype in (np.uint8, np.uint16):
        return x.astype("float32") / np.float32(np.iinfo(x.dtype).max)
    x = x.astype("float32")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: images hold NaN or infinite values.")
    return x


# -- Validation carving ------------------------------------------------------
def _is_fraction(size: Any) -> bool:
    """Whether `size` is a valid fractional validation_size; raises if it is no valid size."""
    is_int = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
    is_fraction = isinstance(size, (float, np.floating)) and 0 < size < 1
    if not (is_fraction or (is_int and size >= 1)):
        raise ValueError(
            "validation_size must be a float in (0, 1) (a fraction of the training "
            "examples) or an int >= 1 (a count). "
            f"Received: validation_size={size!r}."
        )
    return is_fraction


def _validation_count(size: float, total: int, what: str) -> int:
    """How many of `total` training examples `size` keeps for validation."""
    count = max(1, round(float(size) * total)) if _is_fraction(size) else int(size)
    if count >= total:
        raise ValueError(
            f"{what}: validation_size={size!r} keeps {count} of the {total} training "
            "examples for validation, leaving none to train on; pass a smaller one."
        )
    return count


def _carve(train: Split, size: float, what: str) -> tuple[Split, Split]:
    """Splits the last examples of `train` off as validation data."""
    x, y = train
    keep = len(x) - _validation_count(size, len(x), what)
    return (x[:keep], y[:keep]), (x[keep:], y[keep:])


# -- examine -------------------------------------------------------------------
@dataclasses.dataclass
class Examined:
    """What `examine` learnt of a dataset.

    Attributes:
        x: The examples (numpy, float32; int64 tokens for token sequences)
            or the `tf.data.Dataset`.
        y: Integer labels of shape (N,), or (N, steps) for token sequences
            (`is_token_sequences`: one label per step), or None for a dataset.
        input_shape: Shape of one example.
        num_labels: One more than the largest label (or token) read: of all labels of
            arrays, and of a dataset read with `read_labels`; of the batches
            peeked at otherwise.
        is_dataset: Whether `x` is a `tf.data.Dataset`.
        per_step: Whether the labels are one per step of token sequences
            (next-token prediction), not one per example.
    """

    x: Any
    y: np.ndarray | None
    input_shape: tuple[int, ...]
    num_labels: int | None
    is_dataset: bool
    per_step: bool = False

    def labels_from(self, first: int) -> list[int]:
        """The distinct labels (and tokens, of token sequences) >= `first`, as far as known.

        Of arrays, every such value; of a dataset, the largest (`num_labels - 1`).
        """
        if self.is_dataset or self.y is None:
            top = (self.num_labels or 0) - 1
            return [top] if top >= first else []
        values = np.concatenate([self.y.ravel(), self.x.ravel()]) if self.per_step else self.y
        return [int(v) for v in np.unique(values[values >= first])]


def examine(
    x: Any, y: Any = None, *, what: str = "training data", read_labels: bool = True
) -> Examined:
    """Checks a dataset and describes it.

    Arrays and datasets get the same checks: examples of one numeric shape
    with no NaN or infinite values, as many labels as examples, labels that
    are integer class indices (shape (N,) or (N, 1)) or one-hot rows
    (converted to indices). A dataset's element structure is checked from
    its `element_spec` (batched `(examples, labels)` pairs, fixed example
    shape), its contents on the first `PEEK_BATCHES` batches (at most
    `PEEK_EXAMPLES` examples); a dataset of one-hot labels is returned mapped
    to class indices. Arrays of integer tokens of shape (N, steps) with labels
    of the same shape are next-token prediction data (`is_token_sequences`):
    one label per step, and `num_labels` is the vocabulary size.

    Args:
        x: A numpy array of examples (`y` then holds the labels), or a batched
            `tf.data.Dataset` of `(examples, labels)`.
        y: Integer class labels of shape (N,) or (N, 1), or one-hot labels
            of shape (N, classes).
        what: How error messages name this data.
        read_labels: For a dataset, whether to read all its labels (once) to
            find the number of classes; without, only the peeked batches are read.

    Raises:
        ValueError: naming what is wrong (empty data, mismatched lengths,
            labels that are not class indices, NaN, ...) and how to fix it.
    """
    if is_dataset(x):
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
    if is_token_sequences(x, y):
        return _examine_sequences(x, np.asarray(y), what)
    y = labels_to_indices(y, what)
    if len(y) != len(x):
        raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)} labels.")
    x = x.astype("float32", copy=False)
    if not np.isfinite(x).all():
        raise ValueError(
            f"{what}: x holds NaN or infinite values; every trial would fail as if its "
            "architecture diverged. Clean the data (replace or drop those values) before fit()."
        )
    return Examined(x, y, tuple(x.shape[1:]), int(y.max()) + 1, False)


def is_token_sequences(x: np.ndarray, y: Any) -> bool:
    """Whether `(x, y)` is next-token prediction: integer tokens of shape (N, steps) both.

    Such `y` holds one label per step (e.g. `load("text:PATH")`), not one-hot rows.
    """
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != x.shape or x.shape[1] < 2:
        return False
    integral = all(
        np.issubdtype(a.dtype, np.integer)
        or (np.issubdtype(a.dtype, np.floating) and np.all(np.mod(a, 1) == 0))
        for a in (x, y)
    )
    one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
    return bool(integral and not one_hot)


def _examine_sequences(x: np.ndarray, y: np.ndarray, what: str) -> Examined:
    """Token sequences and their per-step labels; the vocabulary covers both."""
    if min(x.min(), y.min()) < 0:
        raise ValueError(f"{what}: tokens and labels must be indices >= 0.")
    vocabulary = int(max(x.max(), y.max())) + 1
    return Examined(
        x.astype("int64"), y.astype("int64"), tuple(x.shape[1:]), vocabulary, False, True
    )


def labels_to_indices(y: Any, what: str) -> np.ndarray:
    """Integer class indices of shape (N,) from index or one-hot labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{what}: labels of shape {y.shape} must be one-hot rows; pass "
                "integer class indices of shape (N,) otherwise. (One label per step is "
                "taken for next-token prediction only: integer tokens x of shape "
                "(N, steps) with labels y of the same shape.)"
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
    """Raises ValueError when a label (or token, of token sequences) is not below `num_classes`."""
    if examined.num_labels is not None and examined.num_labels > num_classes:
        kind = "tokens and labels" if examined.per_step else "labels"
        values = examined.labels_from(num_classes) or [examined.num_labels - 1]
        raise ValueError(
            f"{what}: {kind} must lie in [0, {num_classes}) for num_classes="
            f"{num_classes}, but {name_values(values)} was found. Fix the labels or pass "
            "the right num_classes to the space."
        )


def name_values(values: list[int], word: str = "label") -> str:
    """`label 12`, or `label 128, the largest of 28 such values (100, 101, 102, 103, ...)`."""
    if len(values) == 1:
        return f"{word} {values[0]}"
    shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    return f"{word} {values[-1]}, the largest of {len(values)} such values ({shown}),"


def is_dataset(x: Any) -> bool:
    """Whether `x` is a `tf.data.Dataset`."""
    if type(x).__module__.startswith("numpy"):
        return False
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TensorFlow is a requirement.
        return False
    return isinstance(x, tf.data.Dataset)


def _examine_dataset(dataset: Any, what: str, read_labels: bool) -> Examined:
    """Checks a batched dataset's structure, then the batches it peeks at (see `examine`)."""
    import tensorflow as tf

    x_spec, y_spec = _check_element_spec(dataset.element_spec, what)
    input_shape = tuple(x_spec.shape[1:])
    infinite = dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    if read_labels and infinite:
        raise ValueError(
            f"{what}: the dataset repeats forever, so its classes cannot be "
            "counted; pass num_classes to the space."
        )
    one_hot = y_spec.shape.rank == 2 and y_spec.shape[-1] is not None and y_spec.shape[-1] > 1
    largest, count, peeked = -1, 0, 0
    tokens = None  # Token sequences with a label per step, as the first batch shows.
    for index, (x, y) in enumerate(dataset):
        peeking = index < PEEK_BATCHES and peeked < PEEK_EXAMPLES
        if not (peeking or read_labels):
            break
        where = f"{what} (batch {index + 1} of the dataset)"
        x, y = x.numpy(), y.numpy()
        if tokens is None:
            tokens = is_token_sequences(x, y)
        if tokens:
            _examine_sequences(_same_shape(x, y, where), y, where)
            labels, top = y, max(int(x.max()), int(y.max()))
        else:
            labels = labels_to_indices(y, where)
            top = int(labels.max())
        if peeking:
            _check_batch(x, labels, where)
            peeked += len(labels)
            one_hot = not tokens and (one_hot or (len(y.shape) == 2 and y.shape[-1] > 1))
        largest, count = max(largest, top), count + len(labels)
    if count == 0:
        raise ValueError(f"{what} is empty: the dataset yields no examples.")
    if one_hot:  # Class indices, as the searched networks' losses and metrics take them.
        dataset = dataset.map(
            lambda x, y: (x, tf.argmax(y, axis=-1)), num_parallel_calls=tf.data.AUTOTUNE
        )
    return Examined(dataset, None, input_shape, largest + 1, True, bool(tokens))


def _same_shape(x: np.ndarray, y: np.ndarray, where: str) -> np.ndarray:
    """`x`, once checked to be integer tokens with a label per step (`y` of its shape)."""
    integral = all(
        np.issubdtype(a.dtype, np.integer) or bool(np.all(np.mod(a, 1) == 0)) for a in (x, y)
    )
    if y.shape != x.shape or not integral:
        raise ValueError(
            f"{where}: the dataset's first batch holds token sequences with one label per "
            f"step, but this one has examples {x.shape} and labels {y.shape}; every batch "
            "must hold integer tokens with labels of the same shape."
        )
    return x


def _check_element_spec(spec: Any, what: str) -> tuple[Any, Any]:
    """The (examples, labels) specs of a batched dataset; raises ValueError for other elements."""
    import tensorflow as tf

    if isinstance(spec, dict):
        raise ValueError(
            f"{what}: a tf.data.Dataset must yield (examples, labels) pairs, not dicts "
            f"(keys {sorted(spec)}). Map it to pairs, e.g. dataset.map(lambda d: "
            '(d["image"], d["label"])), or load it with tfds.load(..., as_supervised=True).'
        )
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(
            f"{what}: a tf.data.Dataset must yield (examples, labels) pairs. "
            f"Received elements {spec}."
        )
    x_spec, y_spec = spec
    if not (isinstance(x_spec, tf.TensorSpec) and isinstance(y_spec, tf.TensorSpec)):
        raise ValueError(
            f"{what}: the dataset's examples and labels must each be one tensor. "
            f"Received elements {spec}."
        )
    if x_spec.shape.rank is None or x_spec.shape.rank < 2 or y_spec.shape.rank == 0:
        raise ValueError(
            f"{what}: the dataset's examples must be batched, of shape (batch, ...). "
            f"Received examples {x_spec.shape} and labels {y_spec.shape}; call "
            "dataset.batch(batch_size)."
        )
    if any(d is None for d in x_spec.shape[1:]):
        raise ValueError(
            f"{what}: examples must have a fixed shape. Received {x_spec.shape}; resize "
            "them to one size, or state it with dataset.map(lambda x, y: "
            "(tf.ensure_shape(x, (None, *shape)), y))."
        )
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer):
        raise ValueError(f"{what}: examples must be numeric. Received dtype {x_spec.dtype.name}.")
    if not (y_spec.dtype.is_floating or y_spec.dtype.is_integer):
        raise ValueError(
            f"{what}: labels must be integer class indices 0..num_classes-1 or one-hot "
            f"rows. Received dtype {y_spec.dtype.name}; map them to class indices first."
        )
    return x_spec, y_spec


def _check_batch(x: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Raises ValueError when a batch's examples and labels disagree or hold NaN/inf."""
    if len(x) != len(labels):
        raise ValueError(
            f"{where}: {len(x)} examples but {len(labels)} labels. Batch examples and "
            "labels together: dataset.batch(...) on a dataset of (example, label) pairs."
        )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(
            f"{where}: the examples hold NaN or infinite values; every trial would "
            "fail as if its architecture diverged. Clean the data (replace or drop "
            "those values) before fit()."
        )
