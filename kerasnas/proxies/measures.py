"""The zero-cost proxies of an untrained model and `score`, which computes several at once.

The batch proxies (naswot, snip, grad_norm, jacob_cov) share one forward pass
in training mode (BatchNorm on the batch's statistics, as in the papers'
code) and one gradient tape; synflow runs on a float64 copy of the model.
Every proxy leaves the model as it found it: variables changed by a forward
pass in training mode (BatchNorm's moving statistics, dropout seed states)
are restored, and a final softmax switched off for a pass is switched back.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from kerasnas import backend
from kerasnas.proxies import _model
from kerasnas.proxies.counts import flops, params

log = logging.getLogger(__name__)

#: Every proxy's name, in the order `score` computes them by default.
PROXIES = (
    "synflow", "naswot", "snip", "grad_norm", "jacob_cov", "zico", "meco", "params", "flops"
)  # fmt: skip
#: The proxies that need labels.
LABELLED = ("snip", "grad_norm", "zico")
_BATCH = ("naswot", "snip", "grad_norm", "jacob_cov", "zico", "meco")
#: The proxies that take gradients (tf.GradientTape): TensorFlow backend only.
GRADIENT_PROXIES = ("synflow", "snip", "grad_norm", "jacob_cov", "zico")
#: The proxies that read the ReLU layers' outputs.
_TAPPED = ("naswot", "meco")
#: The small constant jacob_cov adds to the eigenvalues (Mellor et al.'s code).
JACOB_COV_K = 1e-5
#: The examples of the batch whose feature maps meco averages over.
MECO_EXAMPLES = 32


def score(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray | None = None,
    proxies: Sequence[str] = PROXIES,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Zero-cost proxies of an untrained model: scores that predict how well it will train.

    Higher is predicted better for every proxy (`params` and `flops` are
    counts: higher = bigger). The batch proxies are computed on
    `batch_size` examples drawn from `x` (and `y`) without replacement by
    `seed`, kept in their order (all of `x` when it has no more examples), so
    the same model weights and seed give identical numbers. The model is left
    unchanged: its weights, BatchNorm statistics and Keras's global settings
    are as before. See each proxy's function for its definition.

    Args:
        model: An untrained functional or Sequential `keras.Model` with one input
            and one output (class probabilities or logits).
        x: Input examples (e.g. images), of the model's input shape.
        y: Integer class labels, one per example (one per example and step for
            a sequence model's output); read only by `snip` and `grad_norm`.
        proxies: The names of the proxies to compute, from `PROXIES`.
        batch_size: Number of examples the batch proxies see. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.

    Returns:
        A dict from each requested proxy's name to its value. A value is NaN or
        infinite only where the model makes it so: `naswot` and `jacob_cov` are
        `-inf` by definition on a degenerate batch or network (see them), and
        any other non-finite value is logged as a warning naming the proxy
        (the model overflows on finite input); `vote` ranks them all lowest.

    Raises:
        ValueError: for an unknown proxy name, empty `x`, `x` holding NaN or
            infinite values, `x` of another shape than the model takes,
            missing or out-of-range labels, or a model the proxies cannot
            read (no graph, several inputs or outputs).
    """
    names = check_proxies(proxies)
    _model.check_model(model)
    x = _model.check_x(model, x)
    labelled = [p for p in names if p in LABELLED]
    if labelled and y is None:
        raise ValueError(
            f"The proxies {labelled} need labels: pass y (integer class indices, one "
            f"per example of x), or leave {labelled} out of proxies."
        )
    y = _model.check_y(model, y, len(x)) if labelled else None
    x_batch, y_batch = _model.draw_batch(x, y, batch_size, seed)
    batch_names = [p for p in names if p in _BATCH]
    values = _batch_proxies(model, x_batch, y_batch, batch_names) if batch_names else {}
    if "synflow" in names:
        values["synflow"] = _synflow(model, x.shape[1:])
    if "params" in names:
        values["params"] = params(model)
    if "flops" in names:
        values["flops"] = flops(model)
    scores = {name: float(values[name]) for name in names}
    _report_non_finite(model, scores)
    return scores


#: The non-finite scores that are a proxy's definition on a degenerate network or batch
#: (documented with the proxy): returned without a warning.
DEFINED_NON_FINITE = {"naswot": -np.inf, "jacob_cov": -np.inf}


def _report_non_finite(model: keras.Model, scores: dict[str, float]) -> None:
    """Logs a warning for each score that is NaN or infinite other than `DEFINED_NON_FINITE`.

    The input was checked to be finite, so such a score comes from the model: its
    forward or backward pass overflows (float32 holds up to 3e38) or divides by zero.
    The value is still returned, since `vote` ranks non-finite scores lowest.
    """
    for name, value in scores.items():
        if np.isfinite(value) or DEFINED_NON_FINITE.get(name) == value:
            continue
        log.warning(
            "%s of the model %r is %s on finite input: the model's forward or backward pass "
            "overflows or divides by zero (e.g. weights too large for float32). The score is "
            "returned as it is; kn.proxies.vote ranks it lowest.",
            name,
            model.name,
            value,
        )


def check_proxies(proxies: str | Sequence[str]) -> tuple[str, ...]:
    """The proxy names, each once, in order; raises ValueError for an unknown one."""
    names = (proxies,) if isinstance(proxies, str) else tuple(proxies)
    if not names:
        raise ValueError(f"No proxy requested. Choose among {list(PROXIES)}.")
    unknown = [name for name in names if name not in PROXIES]
    if unknown:
        raise ValueError(f"Unknown proxy name(s) {unknown}. Known proxies: {list(PROXIES)}.")
    gradient = [name for name in names if name in GRADIENT_PROXIES]
    if gradient:
        others = ", ".join(repr(p) for p in PROXIES if p not in GRADIENT_PROXIES)
        what = f"Computing the zero-cost proxies {gradient} (they take gradients)"
        backend.require_tensorflow(what, others)
    return tuple(dict.fromkeys(names))


def synflow(model: keras.Model, x: np.ndarray | None = None) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020), as in Abdelfattah et al. (ICLR 2021).

    On a copy of the model in float64 (the papers' code uses double precision:
    the score of a NAS-Bench-201 network of the benchmark's size reaches
    1e61, past float32's 3e38) with every parameter replaced by its absolute
    value and every BatchNormalization layer made the identity (the
    zero-cost proxies' code removes BatchNorm: here moving mean 0, moving
    variance `1 - epsilon`, scale 1, offset 0, in inference mode), the input
    is an all-ones tensor of shape `(1, *input_shape)` and `R` is the sum of
    the output logits (before a final softmax). The score is the sum of
    `theta * dR/dtheta` over the weights (kernels; no biases nor BatchNorm
    parameters, as in the papers' code), the raw value (not its log). All
    its terms are >= 0, so a network with no path from its input to its
    output scores 0, the lowest possible score. A model with a layer that
    cannot be rebuilt from its config is scored in float32 on the model
    itself (its variables restored after), where a deep network may
    overflow to `inf` or `nan` (which `vote` ranks lowest).

    Args:
        model: An untrained functional or Sequential `keras.Model`.
        x: Examples of the input, read only for their shape when the model's
            input shape has a free dimension.
    """
    _model.check_model(model)
    if x is not None:
        shape = _model.check_x(model, x).shape[1:]
    else:
        shape = _model.input_shape(model)
        if any(d is None for d in shape):
            raise ValueError(
                f"The model {model.name!r} takes inputs of shape {shape}, with a free "
                "dimension: pass x so that synflow knows the input's shape."
            )
    value = _synflow(model, shape)
    _report_non_finite(model, {"synflow": value})
    return value


def naswot(model: keras.Model, x: np.ndarray, *, batch_size: int = 64, seed: int = 0) -> float:
    """NASWOT (Mellor et al., ICML 2021, "Neural Architecture Search without Training").

    Each example of the batch gets a binary code `c_i`: 1 for each ReLU unit
    that is positive, over all the ReLU layers of the model's graph
    (`keras.layers.ReLU` and layers with `activation="relu"`). With `C` the
    codes' matrix, `K = C C^T + (1 - C)(1 - C)^T` counts the units on which
    two examples agree, and the score is `log |det K|`. BatchNorm is in
    training mode (the batch's statistics), as in the paper's code. A batch
    where two examples share one code makes `K` singular: the score is then
    `-inf`, the lowest.

    Args:
        model: An untrained functional or Sequential `keras.Model` with ReLUs.
        x: Input examples; `batch_size` of them are drawn by `seed`.
        batch_size: Number of examples. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, proxies=("naswot",), batch_size=batch_size, seed=seed)["naswot"]


def snip(
    model: keras.Model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, seed: int = 0
) -> float:
    """SNIP's connection sensitivity (Lee et al., ICLR 2019), summed over the weights.

    `sum |theta * dL/dtheta|` over the weights (kernels; no biases nor
    normalization parameters, as in Abdelfattah et al.'s code), with `L` the
    mean sparse categorical cross-entropy of the batch, computed from the
    logits (the output before a final softmax; an output without a final
    softmax is taken to be logits), BatchNorm in training mode.

    Args:
        model: An untrained functional or Sequential `keras.Model`.
        x: Input examples; `batch_size` of them are drawn by `seed`.
        y: Integer class labels, one per example.
        batch_size: Number of examples. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, y, proxies=("snip",), batch_size=batch_size, seed=seed)["snip"]


def grad_norm(
    model: keras.Model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, seed: int = 0
) -> float:
    """Gradient norm (Abdelfattah et al., ICLR 2021): the sum of the weights' gradient norms.

    `sum ||dL/dW||_2` over the weight tensors `W` (kernels; no biases nor
    normalization parameters), with the loss and BatchNorm mode of `snip`.

    Args:
        model: An untrained functional or Sequential `keras.Model`.
        x: Input examples; `batch_size` of them are drawn by `seed`.
        y: Integer class labels, one per example.
        batch_size: Number of examples. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, y, proxies=("grad_norm",), batch_size=batch_size, seed=seed)["grad_norm"]


def jacob_cov(model: keras.Model, x: np.ndarray, *, batch_size: int = 64, seed: int = 0) -> float:
    """Jacobian covariance (Mellor et al., 2020, v1 of "NAS without Training").

    The gradients of the sum of the batch's logits (before a final softmax)
    with respect to each input example, flattened into the rows of `J`
    (BatchNorm in training mode, as in the paper's code), give the
    correlation matrix of `J`, whose eigenvalues `l` give the score
    `-sum(log(l + k) + 1 / (l + k))`, `k = 1e-5`. When an example's gradient
    is constant (e.g. zero: the output does not depend on the input) the
    correlations are undefined and the score is `-inf`, the lowest.

    Args:
        model: An untrained functional or Sequential `keras.Model`.
        x: Input examples; `batch_size` of them are drawn by `seed`.
        batch_size: Number of examples. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, proxies=("jacob_cov",), batch_size=batch_size, seed=seed)["jacob_cov"]


def zico(
    model: keras.Model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, seed: int = 0
) -> float:
    """ZiCo (Li et al., ICLR 2023, "Zero-Shot NAS via Inverse Coefficient of Variation").

    The drawn batch is split into two halves, two mini-batches; each gives
    the gradient `g_b` of its mean cross-entropy (from the logits, BatchNorm
    on that half's statistics). For each weight tensor `W` (kernels, as
    `snip`), with `mean` and `std` taken over the two mini-batches per
    weight, the score sums `log(sum(mean(|g|) / std(g)))` over the tensors,
    the sum inside running over the weights whose gradient varies (a tensor
    with none is left out). High where gradients are large and agree across
    batches: the paper's account of what trains fast and generalises.

    Args:
        model: An untrained functional or Sequential `keras.Model`.
        x: Input examples; `batch_size` of them are drawn by `seed` (at least 2).
        y: Integer class labels, one per example.
        batch_size: Number of examples of the two mini-batches together.
            Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, y, proxies=("zico",), batch_size=batch_size, seed=seed)["zico"]


def meco(model: keras.Model, x: np.ndarray, *, batch_size: int = 64, seed: int = 0) -> float:
    """MeCo (Jiang et al., NeurIPS 2023): the minimum eigenvalue of feature-map correlations.

    For one example and one ReLU layer (as `naswot` finds them) whose output
    has positions (an image's pixels, a sequence's steps), the Pearson
    correlation matrix of the layer's channels over the positions has a
    smallest eigenvalue between 0 (some channels are linear combinations of
    the others) and 1 (all uncorrelated); a constant (dead) channel's
    correlations count as 0, which makes it 0. The score sums, over the
    layers, that eigenvalue's mean over the batch's first `MECO_EXAMPLES`
    (32) examples (the paper reads one example: the mean is steadier at the
    same order of cost). A layer without positions (a Dense layer's
    `(batch, units)`) gives one matrix: its units' correlations over those
    examples. BatchNorm in training mode, as `naswot`. High where the
    channels of every layer carry different information.

    Args:
        model: An untrained functional or Sequential `keras.Model` with ReLUs.
        x: Input examples; `batch_size` of them are drawn by `seed`.
        batch_size: Number of examples. Defaults to 64.
        seed: Seed of the draw of the batch. Defaults to 0.
    """
    return score(model, x, proxies=("meco",), batch_size=batch_size, seed=seed)["meco"]


def _meco(outputs: list[np.ndarray]) -> float:
    """The MeCo score of the ReLU layers' outputs (one array per layer)."""
    total = 0.0
    for output in outputs:
        first = output[:MECO_EXAMPLES].astype(np.float64)
        # Each example's positions; a layer without, (batch, units), correlates over examples.
        samples = first.reshape(len(first), -1, output.shape[-1]) if output.ndim > 2 else [first]
        total += float(np.mean([_smallest_correlation_eigenvalue(s) for s in samples]))
    return total


def _smallest_correlation_eigenvalue(rows: np.ndarray) -> float:
    """The smallest eigenvalue of the correlations of the columns; constant ones count 0."""
    with np.errstate(all="ignore"):
        corr = np.atleast_2d(np.corrcoef(rows, rowvar=False))
    return float(np.linalg.eigvalsh(np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0))[0])


def _zico(net, x: np.ndarray, y: np.ndarray, weights: list) -> float:
    """The ZiCo score from the gradients of the two halves of the batch."""
    if len(x) < 2:
        raise ValueError(f"zico needs at least 2 examples (two mini-batches). Received: {len(x)}.")
    half = len(x) // 2
    grads = []
    for part in (slice(0, half), slice(half, 2 * half)):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(tf.constant(x[part]), training=True)[0], tf.float32)
            loss = _mean_cross_entropy(y[part], logits)
        grads.append(tape.gradient(loss, weights))
    total = 0.0
    for first, second in zip(*grads, strict=True):
        if first is None or second is None:
            continue
        both = np.stack([_dense(first), _dense(second)])
        std = both.std(axis=0)
        varies = std > 0
        ratio = float(np.sum(np.abs(both).mean(axis=0)[varies] / std[varies]))
        if ratio > 0:
            total += float(np.log(ratio))
    return total


def _batch_proxies(model: keras.Model, x: np.ndarray, y, names: Sequence[str]) -> dict:
    """The batch proxies `names`, from one forward pass in training mode."""
    tapped = [p for p in names if p in _TAPPED]
    taps = _model.relu_outputs(model) if tapped else []
    if tapped and not taps:
        raise ValueError(
            f"{tapped} read the outputs of ReLU units, but the model {model.name!r} has "
            "no ReLU layer nor layer with activation='relu' in its graph. Leave "
            f"{tapped} out of proxies for this model."
        )
    labelled = [p for p in names if p in LABELLED]
    # snip and grad_norm: from the whole batch's loss gradients (zico takes its own).
    sensitivities = {"snip", "grad_norm"} & set(names)
    weights = _model.proxy_weights(model) if labelled else []
    # Only jacob_cov, snip and grad_norm differentiate (TensorFlow only: check_proxies).
    differentiates = bool(sensitivities) or "jacob_cov" in names
    inputs = tf.constant(x) if differentiates else x
    values = {}
    with _model.preserved(model), _model.logits_net(model, taps) as net:
        with tf.GradientTape(persistent=True) as tape:
            if differentiates:
                tape.watch(inputs)
            outputs = net(inputs, training=True)
            if differentiates:
                logits = tf.cast(outputs[0], tf.float32)
                total = tf.reduce_sum(logits)
            if sensitivities:
                loss = _mean_cross_entropy(y, logits)
        relu = [keras.ops.convert_to_numpy(t) for t in outputs[1:]]
        if "naswot" in names:
            values["naswot"] = _naswot(relu)
        if "meco" in names:
            values["meco"] = _meco(relu)
        if "jacob_cov" in names:
            jacobian = tape.gradient(total, inputs)
            if jacobian is None:
                raise ValueError(
                    f"jacob_cov differentiates the output by the input, but the model "
                    f"{model.name!r} is not differentiable in its input (e.g. it embeds "
                    "token ids). Leave jacob_cov out of proxies for this model."
                )
            values["jacob_cov"] = _jacob_cov(jacobian.numpy())
        if sensitivities:
            grads = tape.gradient(loss, weights)
            pairs = [
                (w.numpy().astype(np.float64), _dense(g))
                for w, g in zip(weights, grads, strict=True)
                if g is not None
            ]
            values["snip"] = sum(float(np.abs(w * g).sum()) for w, g in pairs)
            values["grad_norm"] = sum(float(np.linalg.norm(g)) for _, g in pairs)
        del tape
        if "zico" in names:
            values["zico"] = _zico(net, x, y, weights)
    return values


def _mean_cross_entropy(y: np.ndarray, logits: tf.Tensor) -> tf.Tensor:
    """The mean sparse categorical cross-entropy of a batch's logits."""
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def _naswot(codes: list[np.ndarray]) -> float:
    """log |det K| of the ReLU outputs' binary codes (one array per ReLU layer)."""
    n = len(codes[0])
    kernel = np.zeros((n, n))
    for output in codes:
        c = output.reshape(n, -1) > 0
        units = c.shape[1]
        # Exact integer sums: float32 up to 2**24 units, float64 beyond.
        c = c.astype(np.float32 if units < 2**24 else np.float64)
        on = c.sum(axis=1, dtype=np.float64)
        # C C^T + (1 - C)(1 - C)^T, expanded so that one product suffices.
        kernel += 2 * (c @ c.T) - on[:, None] - on[None, :] + units
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def _jacob_cov(jacobian: np.ndarray) -> float:
    """The jacob_cov score of per-example input gradients (one row per example)."""
    rows = jacobian.reshape(len(jacobian), -1).astype(np.float64)
    with np.errstate(all="ignore"):
        corr = np.atleast_2d(np.corrcoef(rows))
    if not np.all(np.isfinite(corr)):
        return float("-inf")
    eigenvalues = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    shifted = eigenvalues + JACOB_COV_K
    return float(-np.sum(np.log(shifted) + 1.0 / shifted))


def _synflow(model: keras.Model, shape: tuple) -> float:
    try:
        copy = _float64_copy(model)
    except Exception as error:  # Rebuilding a layer from its config can fail many ways.
        log.warning(
            "synflow: cannot copy the model %r in float64 (%s: %s); scoring it in float32.",
            model.name,
            type(error).__name__,
            error,
        )
        with _model.preserved(model):
            _linearize(model)
            return _synflow_pass(model, shape, "float32")
    return _synflow_pass(copy, shape, "float64")


def _synflow_pass(model: keras.Model, shape: tuple, dtype: str) -> float:
    """sum theta * dR/dtheta of an already linearized model (abs weights, no BatchNorm)."""
    weights = _model.proxy_weights(model)
    ones = tf.ones((1, *shape), dtype=dtype)
    with _model.logits_net(model) as net, tf.GradientTape() as tape:
        total = tf.reduce_sum(tf.cast(net(ones, training=False)[0], dtype))
    grads = tape.gradient(total, weights)
    return sum(
        float(np.sum(w.numpy().astype(np.float64) * _dense(g)))
        for w, g in zip(weights, grads, strict=True)
        if g is not None
    )


def _float64_copy(model: keras.Model) -> keras.Model:
    """A float64 copy of the model with absolute weights and identity BatchNormalization."""
    pairs = []

    def copy_layer(layer):
        new = layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})
        pairs.append((layer, new))
        return new

    # Initializers without a seed draw one from Python's generator as they are
    # made: the copy restores its state. Explicit names draw no Keras name numbers.
    state = random.getstate()
    try:
        graph = keras.Model(model.inputs[0], model.outputs[0], name="kerasnas_proxies_graph")
        inputs = keras.Input(
            batch_shape=model.inputs[0].shape, dtype="float64", name="kerasnas_proxies_input"
        )
        copy = keras.models.clone_model(
            graph, input_tensors=inputs, clone_function=copy_layer, recursive=True
        )
    finally:
        random.setstate(state)
    for layer, new in pairs:
        if new.weights:
            new.set_weights([np.abs(w).astype(np.float64) for w in layer.get_weights()])
    _remove_batch_norm(copy)
    return copy


def _linearize(model: keras.Model) -> None:
    """In place: every float variable made absolute, every BatchNormalization the identity."""
    for variable in model.variables:
        if np.issubdtype(np.dtype(variable.dtype), np.floating):
            variable.assign(np.abs(variable.numpy()))
    _remove_batch_norm(model)


def _remove_batch_norm(model: keras.Model) -> None:
    """Makes every BatchNormalization layer the identity in inference mode."""
    for layer in _model.walk(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 1 - layer.epsilon))
            if layer.scale:
                layer.gamma.assign(np.ones(layer.gamma.shape))
            if layer.center:
                layer.beta.assign(np.zeros(layer.beta.shape))


def _dense(gradient) -> np.ndarray:
    """A gradient as a float64 array (an embedding's comes as `tf.IndexedSlices`)."""
    return tf.convert_to_tensor(gradient).numpy().astype(np.float64)
