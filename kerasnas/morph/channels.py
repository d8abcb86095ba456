"""Changing the channels of a tensor without changing what the model computes.

A *channel map* of a tensor lists, for every channel of the new tensor, the
old channel it copies (`m[j] = c`), or -1 for a brand-new channel whose
values do not matter. Net2Wider widens with copies; concatenating a new input
onto a tensor adds -1 channels.

Changing a tensor's channels drags along every tensor tied to it: a
channel-wise layer (BatchNorm, ReLU, pooling, depthwise convolution, ...) has
the same map on its input and output, and an element-wise merge (Add, ...)
the same map on all inputs and its output. Such a *class* of tied tensors is
rewritten as a whole:

* layers producing a class member from their own weights (Conv2D,
  SeparableConv2D, Dense: *sources*) copy their output units: unit j of the
  new layer is old unit `m[j]`, so the new tensor's channel j equals old
  channel `m[j]`;
* channel-wise layers copy their per-channel parameters (BatchNorm's
  gamma, beta and moving statistics, a depthwise kernel's slice), so they
  keep mapping copies to copies;
* layers reading a class member with weights (Conv2D, SeparableConv2D,
  Dense: *consumers*) take input weight `W[m[j]] / n(m[j])` for channel j,
  where `n(c)` counts the copies of old channel c, and 0 for new channels:
  `sum_j W'[j] x'[j] = sum_c n(c) W[c] / n(c) x[c] = sum_c W[c] x[c]`, so
  their outputs do not change;
* a Concatenate reading a class member gets the concatenated maps of its
  inputs (shifted to its channel offsets), a new class rewritten the same way.

A class that reaches a model input or output, a Concatenate from its output
side, or a layer of another kind (Flatten, LayerNormalization, ...) cannot be
rewritten; `plan` raises `MorphError` saying which layer blocks it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from kerasnas.errors import MorphError
from kerasnas.morph.graph import Graph, Node

L = keras.layers

# Layers that read or write channels through their weights.
WEIGHTED = (L.Conv2D, L.SeparableConv2D, L.Dense)
# Element-wise merges: all inputs and the output share one channel map.
MERGES = (L.Add, L.Subtract, L.Average, L.Maximum, L.Minimum, L.Multiply)
# Layers acting on each channel alone (same channel map on input and output).
CHANNELWISE = (
    L.BatchNormalization,
    L.ReLU,
    L.LeakyReLU,
    L.ELU,
    L.Activation,
    L.Dropout,
    L.SpatialDropout2D,
    L.GaussianNoise,
    L.GaussianDropout,
    L.MaxPooling2D,
    L.AveragePooling2D,
    L.GlobalAveragePooling2D,
    L.GlobalMaxPooling2D,
    L.ZeroPadding2D,
    L.Cropping2D,
    L.UpSampling2D,
    L.Identity,
    L.DepthwiseConv2D,
    L.ActivityRegularization,
)


def kind_of(node: Node) -> str:
    """`"weighted"`, `"merge"`, `"channelwise"`, `"concat"`, `"input"` or `"other"`."""
    cls = node.layer_cls
    if cls in WEIGHTED:
        return "weighted"
    if cls in MERGES:
        return "merge"
    if cls in CHANNELWISE:
        return "channelwise"
    if cls is L.Concatenate:
        return "concat"
    if cls is L.InputLayer:
        return "input"
    return "other"


def last_axis_problem(node: Node, rank: int) -> str | None:
    """Why a layer does not treat the last axis as its channels, or None."""
    config = node.config
    if config.get("data_format", "channels_last") != "channels_last":
        return f"layer {node.name!r} is channels_first"
    if node.layer_cls is L.Conv2D and config.get("groups", 1) != 1:
        return f"layer {node.name!r} is a grouped convolution"
    if node.layer_cls is L.DepthwiseConv2D and config.get("depth_multiplier", 1) != 1:
        return f"layer {node.name!r} has depth_multiplier != 1"
    if node.layer_cls in (L.BatchNormalization, L.Concatenate):
        axis = config.get("axis", -1)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if [a % rank for a in axes] != [rank - 1]:
            return f"layer {node.name!r} uses axis {axis}, not the channels axis"
    if node.layer_cls is L.Activation and config.get("activation") in ("softmax", "log_softmax"):
        return f"layer {node.name!r} mixes channels ({config['activation']})"
    return None


@dataclasses.dataclass
class Plan:
    """The rewrites that change one tensor's channels (see the module doc).

    Attributes:
        maps: The new channel map of every tensor that changes.
        sources: Layers whose output units are copied.
        channelwise: Channel-wise layers whose per-channel weights are copied.
        consumers: Layers whose input weights follow their input's map.
    """

    maps: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    sources: list[str] = dataclasses.field(default_factory=list)
    channelwise: list[str] = dataclasses.field(default_factory=list)
    consumers: list[str] = dataclasses.field(default_factory=list)


def plan(
    graph: Graph,
    start: str,
    channel_map: np.ndarray,
    origin: bool = False,
    *,
    consumers: dict[str, list[str]] | None = None,
    order: list[str] | None = None,
) -> Plan:
    """Plans giving tensor `start` the channel map `channel_map`.

    Args:
        graph: The graph.
        start: The tensor (node) whose channels change.
        channel_map: Its new channel map.
        origin: Whether `start`'s layer itself takes care of the change (a
            Concatenate that gains an input): then only the layers tied to
            its output are rewritten, not the layer nor its inputs.
        consumers: `graph.consumers()`, when the caller has it.
        order: `graph.order()`, when the caller has it.

    Raises:
        MorphError: if some tied layer cannot follow (see the module doc).
    """
    consumers = graph.consumers() if consumers is None else consumers
    position = {name: i for i, name in enumerate(graph.order() if order is None else order)}
    outputs = set(graph.outputs)
    result = Plan()
    pending: set[str] = set()
    done: set[str] = set()

    def tied(node: Node) -> bool:
        return kind_of(node) in ("merge", "channelwise")

    def rewrite_class(first: str, channel_map: np.ndarray, origin: str | None) -> None:
        members, queue = {first}, [first]
        while queue:
            name = queue.pop()
            node = graph[name]
            linked = list(node.inputs) if tied(node) and name != origin else []
            linked += [c for c in consumers[name] if tied(graph[c])]
            for other in linked:
                if other not in members:
                    members.add(other)
                    queue.append(other)
        channels = graph[first].channels
        for name in sorted(members, key=position.__getitem__):
            node = graph[name]
            rank = len(node.shape) + 1
            if node.channels != channels and name != origin:
                raise MorphError(
                    f"layer {name!r} has {node.channels} channels where {channels} are "
                    "needed (a broadcasting merge)"
                )
            if name in outputs:
                raise MorphError(f"the changed channels reach the model output {name!r}")
            if name in result.maps:
                raise MorphError(f"layer {name!r} would need two channel maps")
            kind = kind_of(node)
            if name == origin:
                pass
            elif kind == "weighted":
                result.sources.append(name)
            elif kind == "channelwise":
                if node.weights:
                    result.channelwise.append(name)
            elif kind == "input":
                raise MorphError(f"the changed channels reach the model input {name!r}")
            elif kind == "concat":
                raise MorphError(
                    f"the changed channels would have to flow back through the "
                    f"concatenation {name!r}"
                )
            elif kind != "merge":
                raise MorphError(f"layer {name!r} ({node.kind}) cannot change its channels")
            problem = last_axis_problem(node, rank)
            if problem and name != origin:
                raise MorphError(problem)
            result.maps[name] = channel_map
            for child in consumers[name]:
                if child in members and tied(graph[child]):
                    continue  # Rewritten as a member; a weighted member is also a consumer.
                child_node = graph[child]
                child_kind = kind_of(child_node)
                problem = last_axis_problem(child_node, rank)
                if child in done:
                    raise MorphError(
                        f"the concatenation {child!r} would change twice (unsupported topology)"
                    )
                if child_kind == "weighted" and not child_node.as_list and not problem:
                    result.consumers.append(child)
                elif child_kind == "concat" and not problem:
                    pending.add(child)
                else:
                    raise MorphError(
                        problem
                        or f"layer {child!r} ({child_node.kind}) cannot read changed channels"
                    )

    channel_map = np.asarray(channel_map, dtype=np.int64)
    rewrite_class(start, channel_map, origin=start if origin else None)
    while pending:
        concat = min(pending, key=position.__getitem__)
        pending.remove(concat)
        done.add(concat)
        parts, offset = [], 0
        for parent in graph[concat].inputs:
            width = graph[parent].channels
            part = result.maps.get(parent, np.arange(width))
            parts.append(np.where(part < 0, -1, part + offset))
            offset += width
        rewrite_class(concat, np.concatenate(parts), origin=concat)
    return result


def execute(graph: Graph, plan: Plan, rng: np.random.Generator, noise: float = 0.0) -> None:
    """Rewrites the graph's shapes, configs and weights as planned.

    Args:
        graph: The graph `plan` was made for (edited in place).
        plan: The plan.
        rng: Draws the weights of brand-new units and the noise.
        noise: Standard deviation, relative to each weight tensor's own, of
            zero-sum noise added to copied input weights (0 for none).
    """
    for name in plan.sources:
        node = graph[name]
        m = plan.maps[name]
        for key in ("kernel", "pointwise_kernel", "bias"):
            if key in node.weights:
                fill = "zeros" if key == "bias" else "random"
                node.weights[key] = _take(node.weights[key], m, -1, fill, rng)
        node.config["units" if node.layer_cls is L.Dense else "filters"] = len(m)
    fills = {"gamma": "ones", "moving_variance": "ones", "kernel": "random"}
    for name in plan.channelwise:
        node = graph[name]
        m = plan.maps[name]
        for key, value in node.weights.items():
            fill = fills.get(key, "zeros")
            axis = 2 if key == "kernel" else 0  # Depthwise kernels: (h, w, channels, 1).
            node.weights[key] = _take(value, m, axis, fill, rng)
    for name in plan.consumers:
        node = graph[name]
        _read_new_channels(node, plan.maps[node.inputs[0]], rng, noise)
    for name, m in plan.maps.items():
        node = graph[name]
        node.shape = (*node.shape[:-1], len(m))


def read_new_channels(node: Node, channel_map: np.ndarray, rng: np.random.Generator) -> None:
    """Adapts a consumer's input weights to its input's new channels (no noise)."""
    _read_new_channels(node, np.asarray(channel_map, dtype=np.int64), rng, 0.0)


def _read_new_channels(node: Node, m: np.ndarray, rng: np.random.Generator, noise: float) -> None:
    counts = np.bincount(m[m >= 0], minlength=1)
    scale = np.where(m >= 0, 1.0 / np.maximum(counts[np.maximum(m, 0)], 1), 0.0)
    scale = scale.astype(np.float32)
    if node.layer_cls is L.SeparableConv2D:
        depthwise = node.weights["depthwise_kernel"]  # (h, w, in, multiplier)
        node.weights["depthwise_kernel"] = _take(depthwise, m, 2, "random", rng)
        pointwise = node.weights["pointwise_kernel"]  # (1, 1, in * multiplier, out)
        multiplier = depthwise.shape[-1]
        grouped = pointwise.reshape(1, 1, -1, multiplier, pointwise.shape[-1])
        grouped = _take(grouped, m, 2, "zeros", rng) * scale[None, None, :, None, None]
        grouped = grouped + _zero_sum_noise(grouped, m, 2, rng, noise, pointwise)
        grouped = grouped.reshape(1, 1, -1, pointwise.shape[-1]).astype(pointwise.dtype)
        node.weights["pointwise_kernel"] = grouped
        return
    axis = 0 if node.layer_cls is L.Dense else 2  # Dense (in, out); Conv2D (h, w, in, out).
    kernel = node.weights["kernel"]
    shape = [1] * kernel.ndim
    shape[axis] = len(m)
    new = _take(kernel, m, axis, "zeros", rng) * scale.reshape(shape)
    new = new + _zero_sum_noise(new, m, axis, rng, noise, kernel)
    node.weights["kernel"] = new.astype(kernel.dtype)


def _zero_sum_noise(
    weights: np.ndarray,
    m: np.ndarray,
    axis: int,
    rng: np.random.Generator,
    noise: float,
    reference: np.ndarray,
) -> np.ndarray:
    """Noise on the copies of each channel that sums to zero over the copies.

    All copies of a channel carry the same values, so the consumer's output
    stays the same while the copies' weights (and so their gradients) differ.
    """
    if noise <= 0:
        return np.zeros_like(weights)
    sigma = noise * (float(np.std(reference)) or 1.0)
    result = rng.normal(0.0, sigma, weights.shape).astype(weights.dtype)
    result = np.moveaxis(result, axis, 0)
    for c in np.unique(m[m >= 0]):
        copies = np.flatnonzero(m == c)
        if len(copies) == 1:
            result[copies] = 0
        else:
            result[copies] -= result[copies].mean(axis=0, keepdims=True)
    result[m < 0] = 0
    return np.moveaxis(result, 0, axis)


def _take(
    values: np.ndarray, m: np.ndarray, axis: int, fill: str, rng: np.random.Generator
) -> np.ndarray:
    """`values` indexed by the channel map along `axis`; new channels filled."""
    result = np.take(values, np.maximum(m, 0), axis=axis).astype(values.dtype)
    new = m < 0
    if new.any():
        moved = np.moveaxis(result, axis, 0)
        shape = moved[new].shape
        if fill == "zeros":
            moved[new] = 0
        elif fill == "ones":
            moved[new] = 1
        else:
            sigma = float(np.std(values)) or 0.05
            moved[new] = rng.normal(0.0, sigma, shape).astype(values.dtype)
    return result
