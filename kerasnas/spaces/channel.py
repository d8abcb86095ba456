"""The Channel-Bench-Macro spaces: the widths of 7 layers of a small ResNet or MobileNetV2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from kerasnas.architecture import Architecture, Scalar
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import ChoiceSpace, Decision, classifier_head

#: The width multipliers of each layer; the benchmark key's digits `1`..`4` in this order.
CHANNEL_WIDTHS = (0.25, 0.5, 0.75, 1.0)

#: Each searchable layer's channels at width 1.0, as in the benchmark's networks.
CHANNEL_MAX = {
    # stage-1 width (stem and the skip path of blocks 1-2), inner widths of blocks 1, 2, 3,
    # stage-2 width (the skip path of blocks 3-5), inner widths of blocks 4, 5.
    "resnet": (256, 256, 256, 512, 512, 512, 512),
    # stage-1 width, expanded widths of blocks 1, 2, 3, stage-2 width, expanded width of
    # block 4, the final 1x1 convolution.
    "mobilenet": (128, 768, 768, 768, 256, 1536, 1024),
}


class ChannelSpace(ChoiceSpace):
    """Channel-Bench-Macro's spaces (Su et al., "BCNet: Searching for Network
    Width with Bilaterally Coupled Network", CVPR 2021): channel widths, not ops.

    The network is fixed; each of 7 layers takes a width multiplier among
    0.25, 0.5, 0.75 and 1.0 of its channels (`max_channels`). A layer that
    sets the width of a residual stage sets its skip path too.

    `block="resnet"`: a 3x3 stride-2 stem (width of layer 0), two ResNet basic
    blocks (3x3 conv, BN, ReLU, 3x3 conv, BN, identity skip, ReLU) whose inner
    widths are layers 1 and 2 and whose outputs keep layer 0's width, a
    stride-2 basic block with no skip (inner width layer 3, output width
    layer 4), two more basic blocks at layer 4's width (inner widths layers 5
    and 6), global pooling and a softmax layer. Full widths: 256, 256, 256,
    512, 512, 512, 512.

    `block="mobilenet"`: a 3x3 stride-2 stem (layer 0), two MobileNetV2
    inverted residuals (1x1 expansion, 3x3 depthwise, 1x1 linear projection,
    identity skip) whose expanded widths are layers 1 and 2, a stride-2
    inverted residual with no skip (expanded width layer 3, output layer 4),
    one more at layer 4's width (expanded width layer 5), a 1x1 convolution of
    layer 6's width, global pooling and a softmax layer. Full widths: 128,
    768, 768, 768, 256, 1536, 1024 (expansion 6).

    Convolutions have no bias and are followed by BatchNorm, so a model's
    trainable parameters are the table's `params` at full `max_channels`.

    Decisions `layer_0` … `layer_6` take the multipliers above. The benchmark
    key is 7 digits, one per layer, `1`..`4` for 0.25..1.0.

    Args:
        block: `"resnet"` or `"mobilenet"`.
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        max_channels: The 7 layers' channels at width 1.0; the benchmark's
            when None. Smaller ones make quick models of the same shape.
        learning_rate: Adam learning rate of the compiled models.
        name: The space's name; `"channel_<block>"` when None.
    """

    def __init__(
        self,
        block: str = "resnet",
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        max_channels: Sequence[int] | None = None,
        learning_rate: float = 1e-3,
        name: str | None = None,
    ):
        if block not in CHANNEL_MAX:
            raise ValueError(f"block must be one of {sorted(CHANNEL_MAX)}. Received: {block!r}.")
        channels = tuple(int(c) for c in (max_channels or CHANNEL_MAX[block]))
        if len(channels) != 7 or any(c < 1 for c in channels):
            raise ValueError(
                f"max_channels must be 7 positive channel counts. Received: {max_channels}."
            )
        self.block = block
        self.max_channels = channels
        self.learning_rate = float(learning_rate)
        self._decisions = tuple(Decision(f"layer_{i}", CHANNEL_WIDTHS) for i in range(7))
        super().__init__(
            num_classes=num_classes, input_shape=input_shape, name=name or f"channel_{block}"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "block": self.block,
            "max_channels": list(self.max_channels),
            "learning_rate": self.learning_rate,
        }

    def key(self, values: Mapping[str, Scalar]) -> str:
        self.check_values(values)
        return "".join(str(CHANNEL_WIDTHS.index(values[d.name]) + 1) for d in self._decisions)

    def from_key(self, key: str) -> Architecture:
        """The architecture of a 7-digit benchmark key such as `"4344424"`."""
        if len(key) != len(self._decisions) or set(key) - {"1", "2", "3", "4"}:
            raise OutOfSpaceError(
                f"A ChannelSpace key has {len(self._decisions)} digits among 1, 2, 3, 4. "
                f"Received: {key!r}."
            )
        return self.decode(
            {d.name: CHANNEL_WIDTHS[int(c) - 1] for d, c in zip(self._decisions, key, strict=True)}
        )

    def channels(self, arch: Architecture) -> tuple[int, ...]:
        """The 7 layers' channel counts in an architecture."""
        values = self.encode(arch)
        return tuple(
            max(1, round(values[d.name] * c))
            for d, c in zip(self._decisions, self.max_channels, strict=True)
        )

    def build_model(self, arch: Architecture) -> keras.Model:
        c = self.channels(arch)
        inputs = keras.Input(shape=self.input_shape)
        x = _conv_bn(inputs, c[0], 3, strides=2)
        x = layers.ReLU()(x)
        if self.block == "resnet":
            x = _residual(x, _basic(x, c[1], c[0]), relu=True)
            x = _residual(x, _basic(x, c[2], c[0]), relu=True)
            x = layers.ReLU()(_basic(x, c[3], c[4], strides=2))
            x = _residual(x, _basic(x, c[5], c[4]), relu=True)
            x = _residual(x, _basic(x, c[6], c[4]), relu=True)
        else:
            x = _residual(x, _inverted(x, c[1], c[0]))
            x = _residual(x, _inverted(x, c[2], c[0]))
            x = _inverted(x, c[3], c[4], strides=2)
            x = _residual(x, _inverted(x, c[5], c[4]))
            x = layers.ReLU()(_conv_bn(x, c[6], 1))
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{self.key(self.encode(arch))}")
        return self.compile_model(model)


def _conv_bn(x, filters: int, kernel: int, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    return ops_module.batch_norm()(x)


def _basic(x, inner: int, out: int, strides: int = 1):
    """A ResNet basic block's residual branch: 3x3 conv, BN, ReLU, 3x3 conv, BN."""
    y = layers.ReLU()(_conv_bn(x, inner, 3, strides))
    return _conv_bn(y, out, 3)


def _inverted(x, hidden: int, out: int, strides: int = 1):
    """A MobileNetV2 inverted residual's branch: 1x1 expand, 3x3 depthwise, 1x1 linear."""
    y = layers.ReLU()(_conv_bn(x, hidden, 1))
    y = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(y)
    y = layers.ReLU()(ops_module.batch_norm()(y))
    return _conv_bn(y, out, 1)


def _residual(x, branch, relu: bool = False):
    y = layers.Add()([x, branch])
    return layers.ReLU()(y) if relu else y
