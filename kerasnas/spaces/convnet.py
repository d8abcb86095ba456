"""A space of plain and residual convolutional networks for small images, cheap on a CPU."""

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

HEADS = ("gap", "dense")


class ConvNetSpace(SearchSpace):
    """Stages of 3x3/5x5 convolutions for small images (VGG- and ResNet-style).

    The default space for small images (MNIST, Fashion-MNIST, CIFAR scale)
    when trials train on a CPU: full convolutions on a few stages train
    several times faster per example than NASNet's separable-convolution
    cells of the same accuracy there, so a time budget buys more trials
    and more final epochs.

    Stage s works at 1/2**s of the input's size with `width * 2**s` filters:
    `depth` convolution layers (Conv2D without bias, BatchNorm, ReLU) whose
    kernel size is the stage's, then a 2x2 max pooling (layers
    `stage{s}_conv{i}_conv`, `..._bn`, `..._relu`, `..._add`, `stage{s}_pool`). With `residual`,
    every layer after a stage's first adds its input to its output (the
    shapes match there); when every stage has one layer there is nothing to
    add, and such an architecture decodes with `residual=False` (one network,
    one hash). The head is global average pooling (`"gap"`) or
    flattening and a ReLU dense layer of `dense_units` (`"dense"`), then
    dropout at the searched rate and the softmax classifier.

    Decisions: `width`, `residual`, then `stage_{s}/depth` and
    `stage_{s}/kernel` for each stage, then `head` and `dropout`. All are
    unconditional; architectures are choice-only (`arch.choices`).

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        num_stages: Stages (each halves the resolution). Defaults to 2.
        widths: First-stage filter counts to choose from. Defaults to
            (16, 24, 32).
        depths: Convolution layers per stage to choose from. Defaults to
            (1, 2, 3).
        kernels: Kernel sizes to choose from. Defaults to (3,): on a CPU a
            5x5 layer costs about 2.8 times a 3x3 one, which a time budget
            rarely repays on small images.
        dropouts: Dropout rates before the classifier to choose from.
            Defaults to (0.0, 0.25, 0.5).
        dense_units: Units of the `"dense"` head's hidden layer. Defaults to 128.
        learning_rate: Adam learning rate of the compiled models (trials
            with a `kn.Recipe` use the recipe's). Defaults to 1e-3.
        name: The space's name.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {"learning_rate": "learning_rate"}

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        num_stages: int = 2,
        widths: Sequence[int] = (16, 24, 32),
        depths: Sequence[int] = (1, 2, 3),
        kernels: Sequence[int] = (3,),
        dropouts: Sequence[float] = (0.0, 0.25, 0.5),
        dense_units: int = 128,
        learning_rate: float = 1e-3,
        name: str = "convnet",
    ):
        if not isinstance(num_stages, int) or num_stages < 1:
            raise ValueError(f"num_stages must be an integer >= 1. Received: {num_stages!r}.")
        if not isinstance(dense_units, int) or dense_units < 1:
            raise ValueError(f"dense_units must be an integer >= 1. Received: {dense_units!r}.")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}.")
        self.num_stages = num_stages
        self.widths = check_choices("widths", widths, int, lambda v: v >= 1, "positive")
        self.depths = check_choices("depths", depths, int, lambda v: v >= 1, "positive")
        self.kernels = check_choices("kernels", kernels, int, lambda v: v >= 1, "positive")
        self.dropouts = check_choices(
            "dropouts", dropouts, float, lambda v: 0.0 <= v < 1.0, "in [0, 1)"
        )
        self.dense_units = dense_units
        self.learning_rate = float(learning_rate)
        decisions = [Decision("width", self.widths), Decision("residual", (False, True))]
        for s in range(num_stages):
            decisions.append(Decision(f"stage_{s}/depth", self.depths))
            decisions.append(Decision(f"stage_{s}/kernel", self.kernels))
        decisions.append(Decision("head", HEADS))
        decisions.append(Decision("dropout", self.dropouts))
        self._decisions = tuple(decisions)
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_stages": self.num_stages,
            "widths": list(self.widths),
            "depths": list(self.depths),
            "kernels": list(self.kernels),
            "dropouts": list(self.dropouts),
            "dense_units": self.dense_units,
            "learning_rate": self.learning_rate,
        }

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        super().check_input_shape(input_shape)
        smallest = 2 ** (self.num_stages - 1)
        if min(input_shape[:2]) < smallest:
            raise ValueError(
                f"ConvNetSpace with num_stages={self.num_stages} needs images of at least "
                f"{smallest}x{smallest} pixels. Received examples of shape {input_shape}; "
                "use fewer stages."
            )

    # -- Decisions <-> architecture ----------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        extra = set(values) - {d.name for d in self.decisions}
        if extra:
            raise OutOfSpaceError(
                f"Choices {sorted(extra)} are not decisions of this ConvNetSpace; its "
                f"decisions are {[d.name for d in self.decisions]}."
            )
        choices = {d.name: values[d.name] for d in self.decisions}
        if all(choices[f"stage_{s}/depth"] == 1 for s in range(self.num_stages)):
            choices["residual"] = False  # No layer follows a stage's first: nothing to add.
        return Architecture(choices=choices)

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        if arch.cells:
            raise OutOfSpaceError(
                f"A ConvNetSpace architecture has choices only, no cells. Received: {arch!r}."
            )
        return self.decode(arch.choices).choices

    # -- Building -------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        values = self.encode(arch)
        inputs = keras.Input(shape=self.input_shape, name="input")
        x = inputs
        for s in range(self.num_stages):
            filters = int(values["width"]) * 2**s
            kernel = int(values[f"stage_{s}/kernel"])
            for i in range(int(values[f"stage_{s}/depth"])):
                name = f"stage{s}_conv{i}"
                y = layers.Conv2D(
                    filters, kernel, padding="same", use_bias=False, name=f"{name}_conv"
                )(x)
                y = ops_module.batch_norm(f"{name}_bn")(y)
                y = layers.ReLU(name=f"{name}_relu")(y)
                x = layers.Add(name=f"{name}_add")([x, y]) if values["residual"] and i else y
            if min(x.shape[1:3]) >= 2:  # A 1-pixel map has nothing left to pool.
                x = layers.MaxPooling2D(2, padding="same", name=f"stage{s}_pool")(x)
        if values["head"] == "gap":
            x = layers.GlobalAveragePooling2D(name="gap")(x)
        else:
            x = layers.Flatten(name="flatten")(x)
            x = layers.Dense(self.dense_units, activation="relu", name="dense")(x)
        if values["dropout"]:
            x = layers.Dropout(float(values["dropout"]), name="dropout")(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{arch.hash()[:8]}")
        return self.compile_model(model)
