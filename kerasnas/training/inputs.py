"""One input-preparation path for `Search.fit` and `Search.retrain`: checks, then pipelines."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kerasnas import data as data_module
from kerasnas.data import Examined
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


def examine_inputs(x: Any, y: Any, validation_data: Any, *, read_labels: bool = True) -> Inputs:
    """Checks training data and `validation_data` (`(x_val, y_val)` or a batched dataset).

    Args:
        x: Training examples (array) or a batched `tf.data.Dataset`.
        y: Labels when `x` is an array.
        validation_data: `(x_val, y_val)`, a batched dataset, or None.
        read_labels: For datasets, whether to read them once to find the
            number of classes.
    """
    train = data_module.examine(x, y, read_labels=read_labels)
    val = None
    if validation_data is not None:
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


def configure_space(space: SearchSpace, inputs: Inputs) -> None:
    """Gives the space the data's input shape and, when it has none, number of classes."""
    seen = [e.num_labels for e in (inputs.train, inputs.validation) if e and e.num_labels]
    space.configure(
        input_shape=inputs.train.input_shape, num_classes=space.num_classes or max(seen)
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
        data_module.check_labels_fit(examined, space.num_classes, what)


def as_dataset(examined: Examined, batch_size: int, *, shuffle: bool, seed: int) -> Any:
    """The batched pipeline of examined data (a given dataset is used as it is).

    Arrays become tf.data pipelines held in memory and prefetched; with
    `shuffle` they are reshuffled every epoch.
    """
    if examined.is_dataset:
        return examined.x
    return data_module.to_dataset(examined.x, examined.y, batch_size, shuffle=shuffle, seed=seed)
