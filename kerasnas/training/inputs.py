"""One input-preparation path for `Search.fit` and `Search.retrain`: checks, then pipelines."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from kerasnas import data as data_module
from kerasnas.data.checks import Examined, check_labels_fit, is_dataset
from kerasnas.spaces.base import SearchSpace


@dataclasses.dataclass
class Inputs:
    """Training and (optional) validation data, checked (`kerasnas.data.examine`)."""

    train: Examined
    validation: Examined | None

    def datasets(self, batch_size: int, seed: int) -> tuple[Any, Any]:
        """Batched pipelines: training reshuffled each epoch, validation in order (or None)."""
        train = as_dataset(self.train, batch_size, shuffle=True, seed=seed)
        val = None
        if self.validation is not None:
            val = as_dataset(self.validation, batch_size, shuffle=False, seed=seed)
        return train, val

    def merged(self, batch_size: int, seed: int) -> Any:
        """One shuffled pipeline of training plus validation data (for a final training)."""
        train, val = self.train, self.validation
        if val is None:
            return as_dataset(train, batch_size, shuffle=True, seed=seed)
        if train.is_dataset != val.is_dataset:
            raise ValueError(
                "Pass training and validation data alike (both arrays or both datasets)."
            )
        if train.is_dataset:
            return train.x.concatenate(val.x)
        both = data_module.examine(
            np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y])
        )
        return as_dataset(both, batch_size, shuffle=True, seed=seed)


def examine_inputs(
    x: Any,
    y: Any,
    validation_data: Any,
    *,
    read_labels: bool = True,
    validation_split: float = 0.0,
) -> Inputs:
    """Checks training data and `validation_data` (`(x_val, y_val)` or a batched dataset).

    Arrays and datasets get the same checks (`kerasnas.data.examine`; of a
    dataset, the first `kerasnas.data.checks.PEEK_BATCHES` batches are read).

    Args:
        x: Training examples (array) or a batched `tf.data.Dataset`.
        y: Labels when `x` is an array.
        validation_data: `(x_val, y_val)`, a batched dataset, or None.
        read_labels: For datasets, whether to read all their labels once to
            find the number of classes.
        validation_split: For arrays, the fraction of the training examples
            (the last ones, as Keras takes them) kept as validation data.
    """
    if validation_split:
        _check_validation_split(validation_split, x, validation_data)
    train = data_module.examine(x, y, read_labels=read_labels)
    val = None
    if validation_split:
        train, val = split_validation(train, validation_split)
    elif validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) != 2:
                raise ValueError(
                    "validation_data must be (x_val, y_val) or a tf.data.Dataset. "
                    f"Received a sequence of {len(validation_data)} items."
                )
            val = data_module.examine(*validation_data, what="validation data")
        else:
            val = data_module.examine(
                validation_data, what="validation data", read_labels=read_labels
            )
        if val.input_shape != train.input_shape:
            raise ValueError(
                f"Validation examples have shape {val.input_shape} but training "
                f"examples have shape {train.input_shape}."
            )
    return Inputs(train, val)


def _check_validation_split(split: Any, x: Any, validation_data: Any) -> None:
    """Raises ValueError unless a `validation_split` can split `x` (before any data is read)."""
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 < split < 1:
        raise ValueError(
            "validation_split must be a float between 0 and 1 (the fraction of the "
            f"training examples kept for validation). Received: validation_split={split!r}."
        )
    if validation_data is not None:
        raise ValueError(
            "Pass validation_data or validation_split to fit(), not both: validation_split "
            "carves validation data out of the training arrays."
        )
    if is_dataset(x):
        raise ValueError(
            "validation_split cannot split a tf.data.Dataset (its length and order are "
            "unknown before it is read). Pass validation_data=<a batched dataset> instead, "
            "e.g. from dataset.take(n) and dataset.skip(n) before batching."
        )


def split_validation(train: Examined, split: float) -> tuple[Examined, Examined]:
    """Examined arrays split in two: the last `split` fraction of them is validation data.

    As in Keras, the first `floor(N * (1 - split))` examples are kept for training.
    """
    total = len(train.x)
    keep = math.floor(total * (1.0 - split))
    if keep in (0, total):
        raise ValueError(
            f"validation_split={split!r} of the {total} training examples leaves "
            f"{'none to train on' if keep == 0 else 'no validation example'}; pass a "
            f"{'smaller' if keep == 0 else 'larger'} validation_split or more examples."
        )
    parts = ((train.x[:keep], train.y[:keep]), (train.x[keep:], train.y[keep:]))
    return tuple(  # type: ignore[return-value]
        Examined(x, y, train.input_shape, int(y.max()) + 1, False) for x, y in parts
    )


def configure_space(space: SearchSpace, inputs: Inputs) -> None:
    """Gives the space the data's input shape and, when it has none, number of classes.

    Without the space's `num_classes`, the training labels give it, and
    validation labels beyond them are refused (they would widen the classifier
    with classes it never trains on); for token sequences (next-token
    prediction) the vocabulary is every token of the training and validation
    data.
    """
    train, val = inputs.train, inputs.validation
    widened = val is not None and (val.num_labels or 0) > (train.num_labels or 0)
    if widened and train.y is not None and train.y.ndim == 2:
        # Token sequences: the vocabulary is every token seen; a character that only the
        # validation text holds is a class the model must still give a probability.
        space.configure(
            input_shape=train.input_shape, num_classes=space.num_classes or val.num_labels
        )
        return
    if space.num_classes is None and widened:
        label = val.num_labels - 1  # type: ignore[union-attr,operator]
        raise ValueError(
            f"validation data: label {label} was found, but the training labels run "
            f"0..{train.num_labels - 1} ({train.num_labels} classes): the networks would "
            f"get {val.num_labels} outputs, and no trial could learn class {label}. Remove "
            "the validation examples whose classes the training data lacks, or fix the "
            f"labels; if the training data lacks classes, pass num_classes={val.num_labels} "
            "to the space."
        )
    space.configure(
        input_shape=train.input_shape, num_classes=space.num_classes or train.num_labels
    )


def check_fits_space(space: SearchSpace, inputs: Inputs) -> None:
    """Raises ValueError when the examples or labels do not fit the space's networks."""
    for examined, what in ((inputs.train, "training data"), (inputs.validation, "validation data")):
        if examined is None:
            continue
        if examined.input_shape != tuple(space.input_shape):
            raise ValueError(
                f"The {what} has examples of shape {examined.input_shape}, but the "
                f"searched networks take {tuple(space.input_shape)}."
            )
        check_labels_fit(examined, space.num_classes, what)


def as_dataset(examined: Examined, batch_size: int, *, shuffle: bool, seed: int) -> Any:
    """The batched pipeline of examined data (a given dataset is used as it is).

    Arrays become tf.data pipelines held in memory and prefetched; with
    `shuffle` they are reshuffled every epoch.
    """
    if examined.is_dataset:
        return examined.x
    return data_module.to_dataset(examined.x, examined.y, batch_size, shuffle=shuffle, seed=seed)
