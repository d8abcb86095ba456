"""Size proxies: parameter and FLOP counts of a Keras model."""

from __future__ import annotations

import math

import keras
from keras import layers

from kerasnas.proxies._model import walk

_CONVOLUTIONS = (
    layers.Conv1D,
    layers.Conv2D,
    layers.Conv3D,
    layers.DepthwiseConv1D,
    layers.DepthwiseConv2D,
)
_SEPARABLE = (layers.SeparableConv1D, layers.SeparableConv2D)


def params(model: keras.Model) -> int:
    """The model's parameter count: `model.count_params()`.

    Trainable and non-trainable parameters together (BatchNorm's moving mean
    and variance count). Higher = bigger.

    Args:
        model: A built Keras model.
    """
    if not model.built:
        raise ValueError(
            f"The model {model.name!r} is not built, so it has no parameters yet. Build "
            "it on an input shape first (e.g. start it from keras.Input(shape=...))."
        )
    return int(model.count_params())


def flops(model: keras.Model) -> int:
    """The floating-point operations of one forward pass on one example.

    Twice the multiply-accumulates of the weight layers: `Conv1D`, `Conv2D`,
    `Conv3D`, `DepthwiseConv1D`, `DepthwiseConv2D`, `SeparableConv1D`,
    `SeparableConv2D` (depthwise and pointwise parts) and `Dense`, found in
    every layer of the model including nested models. A layer's count is its
    number of output positions (the output shape without the batch and
    channel axes) times its kernel's size, so strides, padding, groups and
    depth multipliers are accounted for. Biases, BatchNorm, activations,
    pooling and additions are not counted (a small fraction of the total). A
    layer called several times (shared) counts once, for its first call.
    Higher = bigger.

    Args:
        model: A Keras model built on a fixed input shape.

    Raises:
        ValueError: if a weight layer's output shape is unknown or not fixed.
    """
    return 2 * sum(_multiply_accumulates(layer) for layer in walk(model))


def _multiply_accumulates(layer) -> int:
    if isinstance(layer, _SEPARABLE):
        kernel_size = math.prod(layer.depthwise_kernel.shape) + math.prod(
            layer.pointwise_kernel.shape
        )
    elif isinstance(layer, (*_CONVOLUTIONS, layers.Dense)):
        kernel_size = math.prod(layer.kernel.shape)
    else:
        return 0
    try:
        shape = tuple(layer.output.shape[1:])
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"flops() reads each layer's output shape, but layer {layer.name!r} has none "
            "(it was never called on an input). Count a model built on keras.Input(...)."
        ) from error
    if any(d is None for d in shape):
        raise ValueError(
            f"flops() needs fixed shapes, but layer {layer.name!r} has output shape "
            f"(batch, {', '.join(str(d) for d in shape)}). Build the model on a fixed "
            "input shape, e.g. keras.Input(shape=(height, width, channels))."
        )
    if isinstance(layer, layers.Dense):
        positions = math.prod(shape[:-1])
    else:
        channel_axis = 0 if getattr(layer, "data_format", None) == "channels_first" else -1
        positions = math.prod(shape) // shape[channel_axis]
    return positions * kernel_size
