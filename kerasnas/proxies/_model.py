"""What the proxies share: checking their inputs, drawing the batch, reading the model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
from keras import layers

#: Layers whose parameters the gradient proxies leave out, as the papers' code does.
NORMALIZATION = (layers.BatchNormalization, layers.LayerNormalization, layers.GroupNormalization)


def check_model(model: keras.Model) -> None:
    """Raises ValueError unless `model` is a built single-input, single-output graph."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"The proxies score a keras.Model. Received: {model!r} of type {type(model).__name__}."
        )
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise ValueError(
            "The proxies read the model's layer graph: pass a functional or Sequential "
            "keras.Model built on an input (e.g. starting from keras.Input(shape=...)). "
            f"Received: the {type(model).__name__} {model.name!r}, which has no "
            "symbolic inputs and outputs."
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            "The proxies need a model with one input and one output (class scores). "
            f"Received: {model.name!r} with {len(inputs)} input(s) and "
            f"{len(outputs)} output(s)."
        )


def input_shape(model: keras.Model) -> tuple:
    """The shape of one example the model takes (None for a free dimension)."""
    return tuple(model.inputs[0].shape[1:])


def check_x(model: keras.Model, x) -> np.ndarray:
    """`x` as a float32 array of examples of the model's input shape, all finite."""
    if x is None:
        raise ValueError("x is None: pass a numpy array of input examples.")
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(
            f"x holds no examples (shape {x.shape}): pass a non-empty array of "
            "examples, one per row."
        )
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"x must hold numbers. Received an array of dtype {x.dtype}.")
    expected = input_shape(model)
    given = x.shape[1:]
    if len(expected) != len(given) or any(
        e not in (None, g) for e, g in zip(expected, given, strict=True)
    ):
        raise ValueError(
            f"The model {model.name!r} takes examples of shape {expected}, but x holds "
            f"examples of shape {given}. Pass x of the model's input shape, or build the "
            f"model for input_shape={given}."
        )
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int(np.sum(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise ValueError(
            f"x holds NaN or infinite values (in {bad} of its {len(x)} examples): every "
            "proxy would be NaN, -inf or a meaningless number. Clean the data (replace or "
            "drop those examples) before scoring."
        )
    return x


def check_y(model: keras.Model, y, num_examples: int) -> np.ndarray:
    """`y` as int64 class indices within the model's classes, one per output position.

    A classifier's output `(batch, classes)` takes one label per example (shape
    `(n,)` or `(n, 1)`); a sequence model's `(batch, steps, classes)` one per
    step (shape `(n, steps)`).
    """
    output = tuple(model.outputs[0].shape)
    classes = output[-1]
    if len(output) < 2 or classes is None:
        raise ValueError(
            "The label proxies need class scores: an output of shape (batch, ..., "
            f"classes). Received: {model.name!r} with output shape {output}."
        )
    y = np.asarray(y)
    if len(output) == 2 and y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    expected = output[1:-1]
    if (
        y.ndim != len(output) - 1
        or len(y) != num_examples
        or any(e not in (None, g) for e, g in zip(expected, y.shape[1:], strict=True))
    ):
        raise ValueError(
            f"y must hold integer class indices of shape ({num_examples}"
            f"{''.join(f', {d}' for d in expected)}): one per example of x"
            f"{' and output step' if expected else ''}. Received y of shape {y.shape}."
        )
    if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "y must hold integer class indices (not one-hot rows or strings). "
            f"Received y of dtype {y.dtype}."
        )
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(
            f"y holds labels from {y.min()} to {y.max()}, but the model has {classes} "
            f"classes (labels 0 to {classes - 1}). Relabel y or build the model for "
            "more classes."
        )
    return y.astype(np.int64, copy=False)


def draw_batch(
    x: np.ndarray, y: np.ndarray | None, batch_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`batch_size` examples drawn without replacement by `seed`, kept in their order.

    All the examples (in order) when there are no more than `batch_size`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an integer >= 1. Received: {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1. Received: {batch_size}.")
    if len(x) <= batch_size:
        index = np.arange(len(x))
    else:
        index = np.sort(np.random.default_rng(seed).choice(len(x), batch_size, replace=False))
    return x[index], None if y is None else y[index]


def walk(model: keras.Model) -> list:
    """Every layer of the model, descending into nested models, each once."""
    found: dict[int, keras.layers.Layer] = {}

    def visit(layer):
        for sub in layer.layers:
            if id(sub) not in found:
                found[id(sub)] = sub
                if isinstance(sub, keras.Model):
                    visit(sub)

    visit(model)
    return list(found.values())


def proxy_weights(model: keras.Model) -> list:
    """The parameters the gradient proxies sum over.

    The trainable weights of the model's layers (kernels, depthwise and
    pointwise kernels, embeddings), without biases and normalization layers'
    scales and offsets, as the zero-cost proxies' code (Abdelfattah et al.,
    2021) sums over the weights of the convolution and linear layers only.
    """
    skip = {
        id(v) for layer in walk(model) if isinstance(layer, NORMALIZATION) for v in layer.weights
    }
    return [v for v in model.trainable_variables if id(v) not in skip and v.name != "bias"]


def relu_outputs(model: keras.Model) -> list:
    """The output tensors of the model's rectifiers, in layer order.

    `keras.layers.ReLU` layers and layers with `activation="relu"` (Dense,
    convolutions, Activation) of the model's own graph (not of nested models).
    """
    found = []
    for layer in model.layers:
        if isinstance(layer, layers.ReLU) or getattr(layer, "activation", None) is (
            keras.activations.relu
        ):
            with contextlib.suppress(AttributeError, ValueError):
                found.append(layer.output)
    return found


def output_layer(model: keras.Model):
    """The layer that computes the model's output, or None if it is not found."""
    output = model.outputs[0]
    for layer in reversed(model.layers):
        with contextlib.suppress(AttributeError, ValueError):
            if layer.output is output:
                return layer
    return None


@contextlib.contextmanager
def logits_net(model: keras.Model, taps: Sequence = ()) -> Iterator[Callable]:
    """`run(x, training)`: the model's layers from the input to `[logits, *taps]`.

    The logits are the model's output before a final softmax: the input of a
    final `Softmax` layer, or the output of a final layer whose softmax
    activation is switched off within the block (restored on exit).
    """
    layer = output_layer(model)
    logits = model.outputs[0]
    if isinstance(layer, layers.Softmax):
        logits = layer.input
    swapped = getattr(layer, "activation", None) is keras.activations.softmax
    if swapped:
        layer.activation = keras.activations.linear
    try:
        # An explicit name draws no number from Keras's global name counters.
        net = keras.Model(model.inputs[0], [logits, *taps], name="kerasnas_proxies_net")

        def run(x, training: bool) -> list:
            outputs = net(x, training=training)
            # A functional model of one output returns it bare.
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

        yield run
    finally:
        if swapped:
            layer.activation = keras.activations.softmax


@contextlib.contextmanager
def preserved(model: keras.Model) -> Iterator[None]:
    """Restores every variable of the model (weights, BN statistics, seed states) on exit."""
    saved = [(v, v.numpy()) for v in model.variables]
    try:
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)
