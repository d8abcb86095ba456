"""The NAS-Bench-Macro search space: 8 layers of a MobileNetV2-style chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from kerasnas.architecture import Architecture, Scalar
from kerasnas.cli.registry import Flag
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import ChoiceSpace, Decision, classifier_head

# The benchmark's key digits: 0 identity, 1 MBv2 block e3 k3, 2 MBv2 block e6 k5.
MACRO_OPS = ("identity", "mb_e3_k3", "mb_e6_k5")
_EXPANSION_KERNEL = {"mb_e3_k3": (3, 3), "mb_e6_k5": (6, 5)}


class MacroSpace(ChoiceSpace):
    """NAS-Bench-Macro's space (Su et al., "Prioritized Architecture Sampling
    with Monto-Carlo Tree Search", CVPR 2021).

    A chain of 8 searchable layers in three stages of 2, 3 and 3 layers. The
    first layer of each stage has stride 2 and doubles the channels. Each layer
    is one of `identity` (skipped; a strided 1x1 convolution with BatchNorm
    where the layer changes resolution or width), `mb_e3_k3` (MobileNetV2
    inverted residual block, expansion 3, 3x3 depthwise kernel) or `mb_e6_k5`
    (expansion 6, 5x5 kernel). A 3x3 convolution stem comes first, and a 1x1
    convolution to `head_channels`, global pooling and a softmax layer last.

    Decisions `layer_0` … `layer_7` take the op names above. The benchmark key
    is 8 digits, one per layer (`0`, `1`, `2` in the order above).

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        stages: Layers per stage. Defaults to (2, 3, 3), the benchmark's.
        init_channels: Stem channels. Defaults to 32.
        head_channels: Channels of the final 1x1 convolution. Defaults to 1280.
        learning_rate: Adam learning rate of the compiled models.
        name: The space's name.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "filters": "init_channels",
        "stages": Flag(
            "stages",
            type=list,
            item=int,
            lower_bound=1,
            help="Comma-separated searchable layers per stage",
        ),
        "learning_rate": "learning_rate",
    }

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        stages: Sequence[int] = (2, 3, 3),
        init_channels: int = 32,
        head_channels: int = 1280,
        learning_rate: float = 1e-3,
        name: str = "macro",
    ):
        stages = tuple(int(s) for s in stages)
        if not stages or any(s < 1 for s in stages):
            raise ValueError(f"stages must be positive layer counts. Received: {stages}.")
        if init_channels < 1 or head_channels < 1:
            raise ValueError("init_channels and head_channels must be positive.")
        self.stages = stages
        self.init_channels = int(init_channels)
        self.head_channels = int(head_channels)
        self.learning_rate = float(learning_rate)
        self._decisions = tuple(Decision(f"layer_{i}", MACRO_OPS) for i in range(sum(stages)))
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "stages": list(self.stages),
            "init_channels": self.init_channels,
            "head_channels": self.head_channels,
            "learning_rate": self.learning_rate,
        }

    def key(self, values: Mapping[str, Scalar]) -> str:
        self.check_values(values)
        return "".join(str(MACRO_OPS.index(values[d.name])) for d in self._decisions)

    def from_key(self, key: str) -> Architecture:
        """The architecture of an 8-digit benchmark key such as `"22212220"`."""
        if len(key) != len(self._decisions) or set(key) - {"0", "1", "2"}:
            raise OutOfSpaceError(
                f"A MacroSpace key has {len(self._decisions)} digits among 0, 1, 2. "
                f"Received: {key!r}."
            )
        return self.decode(
            {d.name: MACRO_OPS[int(c)] for d, c in zip(self._decisions, key, strict=True)}
        )

    def build_model(self, arch: Architecture) -> keras.Model:
        values = self.encode(arch)
        inputs = keras.Input(shape=self.input_shape)
        x = layers.Conv2D(self.init_channels, 3, padding="same", use_bias=False)(inputs)
        x = layers.ReLU()(ops_module.batch_norm()(x))
        channels = self.init_channels
        layer = 0
        for stage in self.stages:
            for i in range(stage):
                strides, out = (2, channels * 2) if i == 0 else (1, channels)
                x = _macro_layer(values[f"layer_{layer}"], x, channels, out, strides)
                channels, layer = out, layer + 1
        x = layers.Conv2D(self.head_channels, 1, use_bias=False)(x)
        x = layers.ReLU()(ops_module.batch_norm()(x))
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{self.key(values)}")
        return self.compile_model(model)


def _macro_layer(op: str, x, channels: int, out: int, strides: int):
    if op == "identity":
        if strides == 1 and channels == out:
            return x
        x = layers.Conv2D(out, 1, strides=strides, use_bias=False)(x)
        return ops_module.batch_norm()(x)
    expansion, kernel = _EXPANSION_KERNEL[op]
    y = layers.Conv2D(channels * expansion, 1, use_bias=False)(x)
    y = layers.ReLU()(ops_module.batch_norm()(y))
    y = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False)(y)
    y = layers.ReLU()(ops_module.batch_norm()(y))
    y = layers.Conv2D(out, 1, use_bias=False)(y)
    y = ops_module.batch_norm()(y)
    if strides == 1 and channels == out:
        y = layers.Add()([x, y])
    return y
