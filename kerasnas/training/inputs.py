"""One input-preparation path for `Search.fit` and `Search.retrain`: checks, then pipelines."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from kerasnas import data as data_module
from kerasnas.data.checks import Examined, check_labels_fit, is_dataset, name_values
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
        Examined(x, y, train.input_shape, _largest(x, y, train.per_step) + 1, False, train.per_step)
        for x, y in parts
    )


def _largest(x: np.ndarray, y: np.ndarray, per_step: bool) -> int:
    """The largest label (and token, of token sequences)."""
    return int(max(x.max(), y.max())) if per_step else int(y.max())


def configure_space(space: SearchSpace, inputs: Inputs) -> None:
    """Gives the space the data's input shape and, when it has none, number of classes.

    The data is checked against what the space can model first
    (`check_data_kind`), so a refused space is left as it was. Without the
    space's `num_classes`, the training labels give it (for token sequences,
    the training tokens and labels: the vocabulary), and validation labels or
    tokens beyond them are refused, naming them: they would widen the
    classifier with classes no trial trains on.
    """
    train, val = inputs.train, inputs.validation
    for examined, what in _parts(inputs):
        check_data_kind(space, examined, what)
    widened = val is not None and (val.num_labels or 0) > (train.num_labels or 0)
    if space.num_classes is None and widened:
        raise ValueError(_widened_message(train, val))  # type: ignore[arg-type]
    space.configure(
        input_shape=train.input_shape, num_classes=space.num_classes or train.num_labels
    )


def _widened_message(train: Examined, val: Examined) -> str:
    """Why validation labels beyond the training ones are refused, and the ways out."""
    found = val.labels_from(train.num_labels or 0)
    largest = val.num_labels - 1  # type: ignore[operator]
    if train.per_step:
        return (
            f"validation data: {name_values(found, 'token')} was found, but the training "
            f"tokens and labels run 0..{train.num_labels - 1} (a vocabulary of "  # type: ignore[operator]
            f"{train.num_labels}): the networks would get {val.num_labels} outputs, and no "
            "trial could learn to predict those tokens. Fix the validation tokens and labels "
            "(are they shifted or from another vocabulary?); if the validation text holds "
            "characters the training text lacks, pass the vocabulary size as num_classes to "
            f"the space (at least {val.num_labels}; for kn.data.load('text:PATH'): "
            "len(kn.data.vocabulary(kn.data.read_text(PATH))))."
        )
    return (
        f"validation data: {name_values(found)} was found, but the training labels run "
        f"0..{train.num_labels - 1} ({train.num_labels} classes): the networks would "  # type: ignore[operator]
        f"get {val.num_labels} outputs, and no trial could learn class {largest}. Remove "
        "the validation examples whose classes the training data lacks, or fix the "
        f"labels; if the training data lacks classes, pass num_classes={val.num_labels} "
        "to the space."
    )


def check_data_kind(space: SearchSpace, examined: Examined, what: str) -> None:
    """Raises ValueError when the space cannot model examples and labels of this kind.

    The rank of the examples (`space.check_input_shape`), then the labels: one
    per step of a sequence (token sequences, next-token prediction) where the
    space predicts one per step (`space.labels_per_step`), else one per example.
    """
    shape = examined.input_shape
    name = type(space).__name__
    space.check_input_shape(shape)
    per_step = space.labels_per_step(shape)
    if per_step and not examined.per_step:
        labels = f"labels of shape {examined.y.shape}" if examined.y is not None else "its labels"
        raise ValueError(
            f"{what}: {name} reads examples of shape {shape} as token sequences for "
            f"next-token prediction, which take one label per step (labels of shape "
            f"(N, {shape[0]}), like x), but {labels} give one per example. For sequence "
            "classification, pass sequences of shape (N, steps, features) (e.g. x[..., None]: "
            "one feature per step) or images; for next-token prediction, pass integer tokens "
            "x with labels y of the same shape (kn.data.load('text:PATH') makes them)."
        )
    if examined.per_step and not per_step:
        raise ValueError(
            f"{what}: the labels are one per step of token sequences (next-token "
            f"prediction), but {name}'s networks predict one label per example of shape "
            f"{shape}. Pass labels of shape (N,), or search kn.spaces.RNNCellSpace."
        )


def check_fits_space(space: SearchSpace, inputs: Inputs) -> None:
    """Raises ValueError when the examples or labels do not fit the space's networks."""
    for examined, what in _parts(inputs):
        check_data_kind(space, examined, what)
        if examined.input_shape != tuple(space.input_shape):
            raise ValueError(
                f"The {what} has examples of shape {examined.input_shape}, but the "
                f"searched networks take {tuple(space.input_shape)}."
            )
        check_labels_fit(examined, space.num_classes, what)


def _parts(inputs: Inputs) -> list[tuple[Examined, str]]:
    """The training and (when given) validation data, with how messages name them."""
    parts = [(inputs.train, "training data")]
    if inputs.validation is not None:
        parts.append((inputs.validation, "validation data"))
    return parts


def as_dataset(examined: Examined, batch_size: int, *, shuffle: bool, seed: int) -> Any:
    """The batched pipeline of examined data (a given dataset is used as it is).

    Arrays become tf.data pipelines held in memory and prefetched; with
    `shuffle` they are reshuffled every epoch.
    """
    if examined.is_dataset:
        return examined.x
    return data_module.to_dataset(examined.x, examined.y, batch_size, shuffle=shuffle, seed=seed)
