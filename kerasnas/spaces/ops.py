"""Cell operations, composed from built-in Keras 3 layers only.

Using only built-in layers keeps exported models loadable with a plain
`keras.models.load_model(path)` (no `custom_objects`) under every backend.
Each op maps `(x, filters, strides, name)` to a tensor with `filters` channels
(pools keep the input's channels, which cells calibrate to `filters`). With a
`name`, its layers are named `{name}_relu`, `{name}_conv`, `{name}_bn`, ... so
that a model built twice has the same layer names (morphism operations refer
to layers by name).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

# BatchNorm momentum: Keras's 0.99 needs thousands of steps before the moving
# statistics are usable, while NAS trials train for a few hundred.
BN_MOMENTUM = 0.9


def _named(name: str | None, suffix: str) -> str | None:
    return None if name is None else f"{name}_{suffix}"


def batch_norm(name: str | None = None):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def relu_conv_bn(x, filters: int, kernel_size: int, strides: int = 1, name: str | None = None):
    x = layers.ReLU(name=_named(name, "relu"))(x)
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        name=_named(name, "conv"),
    )(x)
    return batch_norm(_named(name, "bn"))(x)


def _sep_conv(kernel_size: int) -> Callable:
    def op(x, filters: int, strides: int, name: str | None = None):
        x = layers.ReLU(name=_named(name, "relu"))(x)
        x = layers.SeparableConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            name=_named(name, "sepconv"),
        )(x)
        return batch_norm(_named(name, "bn"))(x)

    return op


def _conv(kernel_size: int) -> Callable:
    def op(x, filters: int, strides: int, name: str | None = None):
        return relu_conv_bn(x, filters, kernel_size, strides, name)

    return op


def _pool(layer_cls) -> Callable:
    def op(x, filters: int, strides: int, name: str | None = None):
        return layer_cls(pool_size=3, strides=strides, padding="same", name=_named(name, "pool"))(x)

    return op


def identity(x, filters: int, strides: int, name: str | None = None):
    """The input itself, or a 1x1 strided convolution where the cell reduces."""
    if strides == 1:
        return x
    return relu_conv_bn(x, filters, 1, strides, name)


OPS: dict[str, Callable] = {
    "identity": identity,
    "sep_conv_3x3": _sep_conv(3),
    "sep_conv_5x5": _sep_conv(5),
    "sep_conv_7x7": _sep_conv(7),
    "conv_1x1": _conv(1),
    "conv_3x3": _conv(3),
    "avg_pool_3x3": _pool(layers.AveragePooling2D),
    "max_pool_3x3": _pool(layers.MaxPooling2D),
}


def check_ops(ops) -> tuple[str, ...]:
    """Validates a list of op names against `OPS`."""
    if isinstance(ops, str):
        ops = [ops]
    ops = tuple(ops)
    if not ops:
        raise ValueError(f"The op set is empty. Choose among {sorted(OPS)}.")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"Unknown op name(s) {unknown}. Known ops: {sorted(OPS)}.")
    if len(set(ops)) != len(ops):
        raise ValueError(f"The op set lists an op twice. Received: ops={list(ops)}.")
    return ops


def apply(op: str, x, filters: int, strides: int, name: str | None = None) -> keras.KerasTensor:
    """Applies the op called `op`; its layers are named after `name` when given."""
    return OPS[op](x, filters, strides, name)
