"""A plain chain of convolutions: the starting point of network morphism search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from kerasnas.architecture import Architecture, Scalar
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import (
    Decision,
    SearchSpace,
    check_choices,
    classifier_head,
)


class ChainSpace(SearchSpace):
    """A chain of Conv2D-BatchNorm-ReLU layers, with optional max pooling.

    Layer i is `conv_{i}` (a Conv2D without bias, "same" padding), `bn_{i}`
    and `relu_{i}`; when `pool_every` is k, a 2x2 max pooling `pool_{i}`
    follows every k-th layer but the last. Global average pooling (`gap`)
    and the softmax classifier (`classifier`) end the model, whose input
    layer is `input`. Every layer has this fixed, readable name, so that
    network morphism ops (`kerasnas.morph`) naming layers apply to any model
    built from the same architecture.

    Decisions: `num_layers` (1 to `max_layers`), then for each layer i that
    exists `layer_{i}/filters` and `layer_{i}/kernel` (conditional on
    `num_layers`). Architectures are choice-only: `arch.choices` holds the
    active decisions.

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        max_layers: The most convolution layers. Defaults to 4.
        filters: Filter counts to choose from. Defaults to (16, 32, 64).
        kernels: Kernel sizes to choose from. Defaults to (3, 5).
        pool_every: Max-pool after every this many layers (0 for never).
            Defaults to 2.
        learning_rate: Adam learning rate of the compiled models. Defaults to 1e-3.
        name: The space's name.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        max_layers: int = 4,
        filters: Sequence[int] = (16, 32, 64),
        kernels: Sequence[int] = (3, 5),
        pool_every: int = 2,
        learning_rate: float = 1e-3,
        name: str = "chain",
    ):
        if not isinstance(max_layers, int) or max_layers < 1:
            raise ValueError(f"max_layers must be an integer >= 1. Received: {max_layers!r}.")
        filters = check_choices("filters", filters, int, lambda v: v >= 1, "positive")
        kernels = check_choices("kernels", kernels, int, lambda v: v >= 1, "positive")
        if not isinstance(pool_every, int) or pool_every < 0:
            raise ValueError(f"pool_every must be an integer >= 0. Received: {pool_every!r}.")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}.")
        self.max_layers = max_layers
        self.filters = filters
        self.kernels = kernels
        self.pool_every = pool_every
        self.learning_rate = float(learning_rate)
        depths = tuple(range(1, max_layers + 1))
        decisions = [Decision("num_layers", depths)]
        for i in range(max_layers):
            active = depths[i:]
            decisions.append(Decision(f"layer_{i}/filters", filters, "num_layers", active))
            decisions.append(Decision(f"layer_{i}/kernel", kernels, "num_layers", active))
        self._decisions = tuple(decisions)
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_layers": self.max_layers,
            "filters": list(self.filters),
            "kernels": list(self.kernels),
            "pool_every": self.pool_every,
            "learning_rate": self.learning_rate,
        }

    # -- Decisions <-> architecture ----------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        return Architecture(choices={d.name: values[d.name] for d in self.active_decisions(values)})

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        values = arch.choices
        if arch.cells:
            raise OutOfSpaceError(
                f"A ChainSpace architecture has choices only, no cells. Received: {arch!r}."
            )
        self.check_values(values)
        extra = set(values) - {d.name for d in self.active_decisions(values)}
        if extra:
            raise OutOfSpaceError(
                f"Choices {sorted(extra)} are not decisions of this ChainSpace "
                f"architecture (num_layers={values['num_layers']}, "
                f"max_layers={self.max_layers})."
            )
        return values

    # -- Building -------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        values = self.encode(arch)
        inputs = keras.Input(shape=self.input_shape, name="input")
        x = inputs
        num_layers = int(values["num_layers"])
        for i in range(num_layers):
            filters, kernel = values[f"layer_{i}/filters"], values[f"layer_{i}/kernel"]
            x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"conv_{i}")(x)
            x = ops_module.batch_norm(f"bn_{i}")(x)
            x = layers.ReLU(name=f"relu_{i}")(x)
            if self.pool_every and (i + 1) % self.pool_every == 0 and i < num_layers - 1:
                x = layers.MaxPooling2D(2, padding="same", name=f"pool_{i}")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{arch.hash()[:8]}")
        return self.compile_model(model)
