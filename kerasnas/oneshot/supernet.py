"""Supernets: one Keras model that holds every op of a space and runs any path through it.

A supernet groups a space's decisions into *slots*. A slot is one mixed edge:
its candidates are the combinations of decision values it can take (for
NAS-Bench-201, the 5 ops of one of the cell's 6 edges; for the NASNet space,
an (input, op) pair of one block branch). A *path* is one candidate per slot,
and the supernet runs a path when it is called with a `(slots, candidates)`
weight matrix that is one-hot per slot. Other weightings run mixtures: the
softmax weights of DARTS, the kept ops of path dropout. Candidates whose
`active` entry is 0 are not computed at all, so a single path costs about
what the standalone network costs.

BatchNorm layers of a supernet keep no running statistics while training
(shared weights see a different path at every step, so running averages mix
them); they normalise with the statistics of the batch, or of each ghost
batch (`virtual_batch_size`). `calibrate=True` batches accumulate a path's
own statistics, which inference then uses: that is how a candidate is scored
or extracted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from kerasnas.architecture import Scalar
from kerasnas.spaces import ops as space_ops
from kerasnas.spaces.base import SearchSpace

# The epsilon of the standalone models' BatchNormalization (Keras's default).
BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class Slot:
    """One mixed edge of a supernet.

    Args:
        name: The slot's name (e.g. `"edge_2_1"`).
        decisions: Names of the space decisions the slot stands for.
        candidates: Per candidate, the values of those decisions.
    """

    name: str
    decisions: tuple[str, ...]
    candidates: tuple[tuple[Scalar, ...], ...]


class GhostBatchNorm(layers.Layer):
    """BatchNorm for supernets: batch (or ghost-batch) statistics while training.

    Training normalises each ghost batch of `virtual_batch_size` examples
    with its own mean and variance (the whole batch when None, or when the
    batch is not a multiple of it) and updates no running statistics. A
    `calibrate=True` call normalises with the batch's statistics and adds them
    to an exact running mean (reset by `reset_statistics()`); inference uses
    those calibrated statistics.

    Args:
        affine: Whether it learns a scale and an offset.
        virtual_batch_size: Ghost batch size, or None for the whole batch.
        epsilon: Added to the variance.
    """

    def __init__(
        self,
        affine: bool = True,
        virtual_batch_size: int | None = None,
        epsilon: float = BN_EPSILON,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.affine = affine
        self.virtual_batch_size = virtual_batch_size
        self.epsilon = epsilon

    def build(self, input_shape: tuple) -> None:
        channels = (int(input_shape[-1]),)
        if self.affine:
            self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="moving_variance"
        )
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def reset_statistics(self) -> None:
        self.moving_mean.assign(ops.zeros_like(self.moving_mean))
        self.moving_variance.assign(ops.ones_like(self.moving_variance))
        self.count.assign(0.0)

    def _normalize(self, x, mean, variance):
        y = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.affine:
            y = y * self.gamma + self.beta
        return y

    def call(self, x, training: bool = False, calibrate: bool = False):
        axes = tuple(range(len(x.shape) - 1))
        if calibrate:
            mean, variance = ops.moments(x, axes=axes)
            n = self.count
            self.moving_mean.assign((self.moving_mean * n + mean) / (n + 1.0))
            self.moving_variance.assign((self.moving_variance * n + variance) / (n + 1.0))
            self.count.assign(n + 1.0)
            return self._normalize(x, mean, variance)
        if training:
            vbs = self.virtual_batch_size
            if not vbs:
                return self._batch_normalize(x)
            batch = x.shape[0]
            if batch is not None:
                return self._ghost_normalize(x) if batch % vbs == 0 else self._batch_normalize(x)
            return ops.cond(
                ops.shape(x)[0] % vbs == 0,
                lambda: self._ghost_normalize(x),
                lambda: self._batch_normalize(x),
            )
        return self._normalize(x, self.moving_mean, self.moving_variance)

    def _batch_normalize(self, x):
        mean, variance = ops.moments(x, axes=tuple(range(len(x.shape) - 1)))
        return self._normalize(x, mean, variance)

    def _ghost_normalize(self, x):
        """Each ghost batch on its own statistics (the batch is a multiple of the ghost size)."""
        shape = ops.shape(x)
        ghosts = ops.reshape(x, (-1, self.virtual_batch_size, *x.shape[1:]))
        axes = tuple(range(1, len(ghosts.shape) - 1))
        mean, variance = ops.moments(ghosts, axes=axes, keepdims=True)
        return ops.reshape(self._normalize(ghosts, mean, variance), shape)


class ReLUConvBN(layers.Layer):
    """ReLU, convolution without bias, `GhostBatchNorm`: the conv op of the spaces.

    Args:
        filters: Output channels.
        kernel_size: Convolution kernel size.
        strides: Convolution strides.
        affine: Whether the BatchNorm learns a scale and an offset.
        separable: A separable convolution instead of a full one.
        relu: Whether it starts with a ReLU.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        affine: bool = True,
        separable: bool = False,
        relu: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.relu = relu
        self.separable = separable
        conv = layers.SeparableConv2D if separable else layers.Conv2D
        self.conv = conv(filters, kernel_size, strides=strides, padding="same", use_bias=False)
        self.bn = GhostBatchNorm(affine=affine)

    def call(self, x, training: bool = False, calibrate: bool = False):
        if self.relu:
            x = ops.relu(x)
        return self.bn(self.conv(x), training=training, calibrate=calibrate)

    def export(self, x, name: str | None = None):
        """Applies this layer's function to the Keras tensor `x` with built-in layers.

        The new layers get copies of this layer's weights (the BatchNorm its
        calibrated statistics), so a standalone model computes what the
        supernet's path computes in inference mode.
        """
        if self.relu:
            x = layers.ReLU(name=None if name is None else f"{name}_relu")(x)
        kind = "sepconv" if self.separable else "conv"
        conv = type(self.conv).from_config({**self.conv.get_config(), "name": _named(name, kind)})
        x = conv(x)
        conv.set_weights(self.conv.get_weights())
        return export_batch_norm(self.bn, x, _named(name, "bn"))


def _named(name: str | None, suffix: str) -> str | None:
    return None if name is None else f"{name}_{suffix}"


def export_batch_norm(bn: GhostBatchNorm, x, name: str | None = None):
    """A Keras `BatchNormalization` with `bn`'s weights and calibrated statistics."""
    layer = layers.BatchNormalization(momentum=space_ops.BN_MOMENTUM, epsilon=bn.epsilon, name=name)
    y = layer(x)
    channels = int(x.shape[-1])
    gamma = np.asarray(bn.gamma) if bn.affine else np.ones(channels, "float32")
    beta = np.asarray(bn.beta) if bn.affine else np.zeros(channels, "float32")
    layer.set_weights([gamma, beta, np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)])
    return y


def copy_layer(source: layers.Layer, x, name: str | None = None):
    """Applies a built-in layer's copy (config and weights) to the Keras tensor `x`."""
    config = source.get_config()
    if name is not None:
        config["name"] = name
    else:
        config.pop("name", None)
    layer = type(source).from_config(config)
    y = layer(x)
    layer.set_weights(source.get_weights())
    return y


class MixedOp(layers.Layer):
    """A slot's candidates applied to one input, summed with the path's weights.

    Candidate k is computed only where `active[k]` is non-zero.

    Args:
        candidates: One callable layer per candidate (None for a candidate
            that computes zeros, such as NAS-Bench-201's `none`).
    """

    def __init__(self, candidates: Sequence[Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.candidates = list(candidates)

    def call(self, x, weights, active, training: bool = False, calibrate: bool = False):
        total = None
        for k, op in enumerate(self.candidates):
            if op is None:
                continue
            w = weights[k]

            def run(op=op, w=w):
                y = op(x, training=training, calibrate=calibrate) if _stateful(op) else op(x)
                return ops.cast(w, y.dtype) * y

            out = ops.cond(active[k] > 0, run, lambda: ops.zeros_like(x))
            total = out if total is None else total + out
        return ops.zeros_like(x) if total is None else total


def _stateful(layer: Any) -> bool:
    return isinstance(layer, (ReLUConvBN, GhostBatchNorm))


def check_space(space: SearchSpace, space_type: type, supernet: str) -> None:
    """Raises ValueError unless `space` is a configured `space_type`."""
    if not isinstance(space, space_type):
        raise ValueError(f"{supernet} needs a {space_type.__name__}. Received: {space!r}.")
    if not space.is_configured:
        raise ValueError(
            "The space does not know its input_shape and num_classes yet; "
            "configure it (or let Search.fit() take them from the data)."
        )


class Supernet(keras.Model):
    """Base class of supernets: every op of a space in one model.

    A subclass sets `self.space` and `self.slots` (a tuple of `Slot`) in its
    constructor, builds its layers, and implements `call` and `export_path`.
    The rest (paths from decision values and back, sampling, calibration,
    regularisation of the active ops, extraction of a standalone model) is
    shared.

    Call it as `supernet(x, weights, active, training=..., calibrate=...)`,
    where `weights` and `active` are `(num_slots, max_candidates)` float
    matrices (see `path`). It returns logits.
    """

    space: SearchSpace
    slots: tuple[Slot, ...]

    @property
    def num_slots(self) -> int:
        return len(self.slots)

    @property
    def max_candidates(self) -> int:
        return max(len(s.candidates) for s in self.slots)

    def build_all(self) -> None:
        """Creates every variable with one all-ops pass (subclasses call it last)."""
        full = ops.ones((self.num_slots, self.max_candidates))
        self(ops.zeros((2, *self.space.input_shape)), full, full, training=True)

    def candidate_mask(self) -> np.ndarray:
        """`(slots, max_candidates)`: 1 where a slot has that candidate, else 0."""
        mask = np.zeros((self.num_slots, self.max_candidates), "float32")
        for s, slot in enumerate(self.slots):
            mask[s, : len(slot.candidates)] = 1.0
        return mask

    def indices(self, values: Mapping[str, Scalar]) -> list[int]:
        """The candidate index of each slot that the decision values select."""
        self.space.check_values(values)
        found = []
        for slot in self.slots:
            key = tuple(values[d] for d in slot.decisions)
            try:
                found.append(slot.candidates.index(key))
            except ValueError:
                raise ValueError(
                    f"The values {dict(zip(slot.decisions, key, strict=True))} are not a "
                    f"candidate of the supernet's slot {slot.name!r}."
                ) from None
        return found

    def values_of(self, indices: Sequence[int]) -> dict[str, Scalar]:
        """The decision values of one candidate index per slot."""
        if len(indices) != self.num_slots:
            raise ValueError(
                f"A path has one candidate index per slot ({self.num_slots}). "
                f"Received {len(indices)}."
            )
        values: dict[str, Scalar] = {}
        for slot, k in zip(self.slots, indices, strict=True):
            values.update(zip(slot.decisions, slot.candidates[int(k)], strict=True))
        return values

    def path(self, values_or_indices: Mapping[str, Scalar] | Sequence[int]) -> np.ndarray:
        """The one-hot `(slots, max_candidates)` weights of one architecture."""
        indices = (
            self.indices(values_or_indices)
            if isinstance(values_or_indices, Mapping)
            else list(values_or_indices)
        )
        one_hot = np.zeros((self.num_slots, self.max_candidates), "float32")
        one_hot[np.arange(self.num_slots), indices] = 1.0
        return one_hot

    def sample_indices(self, rng: np.random.Generator) -> list[int]:
        """One candidate per slot, uniformly at random."""
        return [int(rng.integers(len(slot.candidates))) for slot in self.slots]

    def statistics_layers(self) -> list[GhostBatchNorm]:
        return [layer for layer in self._flatten_layers() if isinstance(layer, GhostBatchNorm)]

    def reset_statistics(self) -> None:
        for layer in self.statistics_layers():
            layer.reset_statistics()

    def set_virtual_batch_size(self, size: int | None) -> None:
        """Sets the ghost batch size of every BatchNorm (before any tracing)."""
        for layer in self.statistics_layers():
            layer.virtual_batch_size = size

    def candidate_kernels(self) -> list[list[list[Any]]]:
        """Per slot and candidate, the kernels that only that candidate uses.

        Subclasses return them so that weight decay applies to the active
        path only; kernels outside every slot are in `shared_kernels`.
        """
        raise NotImplementedError

    def shared_kernels(self) -> list[Any]:
        in_slots = {id(v) for per_slot in self.candidate_kernels() for c in per_slot for v in c}
        return [v for v in self.trainable_variables if id(v) not in in_slots and len(v.shape) > 1]

    def regularization(self, active) -> Any:
        """Sum of squared kernels of the shared layers and of the active candidates."""
        total = sum(ops.sum(ops.square(v)) for v in self.shared_kernels())
        for s, per_slot in enumerate(self.candidate_kernels()):
            for k, kernels in enumerate(per_slot):
                if kernels:
                    l2 = sum(ops.sum(ops.square(v)) for v in kernels)
                    total = total + ops.cast(active[s, k] > 0, "float32") * l2
        return total

    def export_path(self, values: Mapping[str, Scalar]) -> keras.Model:
        """The standalone functional model of one path (uncompiled); see `extract`."""
        raise NotImplementedError

    def extract(self, values: Mapping[str, Scalar]) -> keras.Model:
        """The architecture of `values` as a standalone, compiled `keras.Model`.

        It is built from built-in Keras layers in the space's own structure,
        with the supernet's shared weights and the BatchNorm statistics of the
        last calibration (calibrate the path first: `OneShotTrainer.calibrate`).
        It computes what `space.build_model` would build, initialised from the
        supernet, and is compiled the way the space compiles its models.
        """
        return self.space.compile_model(self.export_path(values))
