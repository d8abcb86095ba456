"""The supernet of the NASNet / ENAS cell space: every (input, op) pair of every block branch.

As in ENAS, a slot is one branch of one block of the normal or the reduction
cell, and its candidates are the `(input, op)` pairs the branch can take:
each pair has its own weights. Every normal cell of the network follows the
normal slots of the path, every reduction cell the reduction slots.

The space's cell concatenates the blocks that no other block uses, and which
blocks those are depends on the path. The supernet concatenates all the
blocks instead, each multiplied by an "unused" indicator computed from the
path (0 or 1; a soft value for DARTS's mixtures), so that the layers after a
cell always see `num_blocks * filters` channels; the zeroed channels
contribute nothing. The extracted model concatenates only the unused blocks,
and the kernel rows of the layers that read a cell's output (the next cells'
input calibration, the classifier) are sliced to match, so it computes
exactly the supernet's function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from kerasnas.architecture import Scalar
from kerasnas.oneshot.supernet import (
    GhostBatchNorm,
    ReLUConvBN,
    Slot,
    Supernet,
    check_space,
    copy_layer,
    export_batch_norm,
)
from kerasnas.spaces.base import classifier_head
from kerasnas.spaces.nasnet import CELL_NAMES, NASNetSpace

BRANCHES = ("a", "b")


def _candidate_op(op: str, filters: int, strides: int, affine: bool) -> layers.Layer:
    """The supernet layer of one op of `kerasnas.spaces.ops.OPS`."""
    if op == "identity":
        if strides == 1:
            return layers.Identity()
        return ReLUConvBN(filters, 1, strides=strides, affine=affine)
    if op.startswith("sep_conv_"):
        size = int(op.rsplit("x", 1)[-1])
        return ReLUConvBN(filters, size, strides=strides, affine=affine, separable=True)
    if op.startswith("conv_"):
        size = int(op.rsplit("x", 1)[-1])
        return ReLUConvBN(filters, size, strides=strides, affine=affine)
    if op == "avg_pool_3x3":
        return layers.AveragePooling2D(pool_size=3, strides=strides, padding="same")
    if op == "max_pool_3x3":
        return layers.MaxPooling2D(pool_size=3, strides=strides, padding="same")
    raise ValueError(f"NASNetSupernet has no supernet layer for the op {op!r}.")


def _kernels(op: layers.Layer) -> list[Any]:
    """The convolution kernels of a candidate's layer (none for pools and identity)."""
    if not isinstance(op, ReLUConvBN):
        return []
    if op.separable:
        return [op.conv.depthwise_kernel, op.conv.pointwise_kernel]
    return [op.conv.kernel]


def _export_op(op: layers.Layer, x):
    if isinstance(op, ReLUConvBN):
        return op.export(x)
    if isinstance(op, layers.Identity):
        return x
    return copy_layer(op, x)


def _export_reading(layer: ReLUConvBN, x, rows: np.ndarray | None):
    """`layer.export(x)`, its kernel restricted to the input channels `rows` (all when None)."""
    if rows is None:
        return layer.export(x)
    x = layers.ReLU()(x)
    config = layer.conv.get_config()
    config.pop("name", None)
    conv = type(layer.conv).from_config(config)
    y = conv(x)
    (kernel,) = layer.conv.get_weights()
    conv.set_weights([kernel[:, :, rows, :]])
    return export_batch_norm(layer.bn, y)


def _block_rows(blocks: Sequence[int], filters: int) -> np.ndarray:
    """The channels of the supernet's full concatenation that hold `blocks`, in order."""
    return np.concatenate([np.arange(b * filters, (b + 1) * filters) for b in blocks])


class _Branch(layers.Layer):
    """One block branch: every `(input, op)` candidate of its slot, weighted by the path.

    Like `MixedOp`, candidate k is computed only where `active[k]` is non-zero;
    but candidate k reads the cell node `sources[k]`, and in a reduction cell
    the ops on the cell inputs halve the resolution, so the zeros of an
    inactive candidate are `zeros`, a tensor of the branch's output shape.

    Args:
        sources: Per candidate, the index of the cell node it reads.
        candidates: Per candidate, its layer.
    """

    def __init__(self, sources: Sequence[int], candidates: Sequence[layers.Layer], **kwargs: Any):
        super().__init__(**kwargs)
        self.sources = [int(i) for i in sources]
        self.candidates = list(candidates)

    def call(self, nodes, zeros, weights, active, training: bool = False, calibrate: bool = False):
        total = zeros
        for k, (i, op) in enumerate(zip(self.sources, self.candidates, strict=True)):

            def run(op=op, x=nodes[i], w=weights[k]):
                if isinstance(op, ReLUConvBN):
                    y = op(x, training=training, calibrate=calibrate)
                else:
                    y = op(x)
                return ops.cast(w, y.dtype) * y

            total = total + ops.cond(active[k] > 0, run, lambda: zeros)
        return total


class _Cell(layers.Layer):
    """A normal or reduction cell holding every candidate of its slots."""

    def __init__(
        self,
        space: NASNetSpace,
        kind: str,
        filters: int,
        prev_prev_strides: int,
        first_slot: int,
        max_candidates: int,
        affine: bool,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.kind = kind
        self.filters = filters
        self.reduction = kind == "reduction"
        self.num_blocks = space.num_blocks
        self.first_slot = first_slot
        self.in1 = ReLUConvBN(filters, 1, strides=prev_prev_strides)
        self.in0 = ReLUConvBN(filters, 1)
        self.branches = []
        # reads[s, k, j]: candidate k of the cell's slot s reads block j.
        reads = np.zeros((2 * self.num_blocks, max_candidates, self.num_blocks), "float32")
        for b in range(self.num_blocks):
            for x in BRANCHES:
                sources, candidates = [], []
                for i in range(2 + b):
                    strides = 2 if self.reduction and i < 2 else 1
                    for op in space.ops:
                        if i >= 2:
                            reads[len(self.branches), len(sources), i - 2] = 1.0
                        sources.append(i)
                        candidates.append(_candidate_op(op, filters, strides, affine))
                self.branches.append(_Branch(sources, candidates, name=f"block_{b}_{x}"))
        self.reads = reads

    def _slots(self, matrix):
        return matrix[self.first_slot : self.first_slot + 2 * self.num_blocks]

    def unused(self, weights, active):
        """Per block, how far it is unused: 1.0 when no block of the path reads it.

        For a path (one-hot rows) it is exactly 1.0 or 0.0. For a mixture it is
        the product over slots of (1 - the slot's weight on candidates that read
        the block): the chance that no slot reads it when each slot picks a
        candidate with those probabilities (DARTS's softmax), differentiable in
        the weights; kept candidates of path dropout (weight 1) make it 0.
        """
        weights = self._slots(weights) * ops.cast(self._slots(active) > 0, weights.dtype)
        reading = ops.einsum("sc,sck->sk", weights, ops.convert_to_tensor(self.reads))
        return ops.prod(1.0 - ops.clip(reading, 0.0, 1.0), axis=0)

    def call(
        self, prev, prev_prev, weights, active, training: bool = False, calibrate: bool = False
    ):
        prev_prev = self.in1(prev_prev, training=training, calibrate=calibrate)
        prev = self.in0(prev, training=training, calibrate=calibrate)
        # The shape of every branch's output (same padding: ceil(size / 2) when strided).
        zeros = ops.zeros_like(prev[:, ::2, ::2, :] if self.reduction else prev)
        nodes = [prev, prev_prev]
        w, a = self._slots(weights), self._slots(active)
        for b in range(self.num_blocks):
            total = None
            for s in (2 * b, 2 * b + 1):
                y = self.branches[s](
                    nodes, zeros, w[s], a[s], training=training, calibrate=calibrate
                )
                total = y if total is None else total + y
            nodes.append(total)
        out = ops.concatenate(nodes[2:], axis=-1)
        mask = ops.repeat(self.unused(weights, active), self.filters)
        return out * ops.cast(mask, out.dtype)

    def export(self, prev, prev_prev, prev_rows, prev_prev_rows, indices: Sequence[int]):
        """The cell of the path `indices` on Keras tensors; returns (output, its rows)."""
        prev_prev = _export_reading(self.in1, prev_prev, prev_prev_rows)
        prev = _export_reading(self.in0, prev, prev_rows)
        nodes = [prev, prev_prev]
        used = set()
        for b in range(self.num_blocks):
            outs = []
            for s in (2 * b, 2 * b + 1):
                branch = self.branches[s]
                k = int(indices[self.first_slot + s])
                used.add(branch.sources[k])
                outs.append(_export_op(branch.candidates[k], nodes[branch.sources[k]]))
            nodes.append(layers.Add()(outs))
        # The space concatenates the unused blocks in block order.
        unused = [b for b in range(self.num_blocks) if 2 + b not in used]
        outs = [nodes[2 + b] for b in unused]
        out = outs[0] if len(outs) == 1 else layers.Concatenate()(outs)
        return out, _block_rows(unused, self.filters)


class NASNetSupernet(Supernet):
    """Every network of a `NASNetSpace` in one model (the ENAS supernet of the space).

    The skeleton is the space's: a stem convolution and BatchNorm, then
    `num_reductions + 1` stages of `num_cells` normal cells separated by
    reduction cells (which halve the resolution and double the filters), then
    ReLU, global average pooling and the classifier (the space's dropout is
    left out of the supernet; extracted models have it). Each cell calibrates
    its two inputs to `filters` channels, and each of its blocks adds two
    branches. A branch is a slot whose candidates are all the `(input, op)`
    pairs of the space, each with its own weights; slots are named
    `"{cell}/block_{b}/branch_{a|b}"` and stand for the decisions
    `"{cell}/block_{b}/input_{a|b}"` and `"{cell}/block_{b}/op_{a|b}"`.

    A cell's output is the concatenation of all its blocks, each multiplied
    by how far the path leaves it unused (see the module docstring): 0 or 1
    for a path; for a mixture, the product over slots of one minus the
    slot's weight on candidates that read the block.

    Args:
        space: A configured `NASNetSpace`.
        affine: Whether the BatchNorms inside candidate ops learn a scale and
            an offset. Defaults to False.
    """

    def __init__(self, space: NASNetSpace, affine: bool = False, **kwargs: Any):
        check_space(space, NASNetSpace, "NASNetSupernet")
        super().__init__(name=kwargs.pop("name", "nasnet_supernet"), **kwargs)
        self.space = space
        self.slots = tuple(
            Slot(
                f"{cell}/block_{b}/branch_{x}",
                (f"{cell}/block_{b}/input_{x}", f"{cell}/block_{b}/op_{x}"),
                tuple((i, op) for i in range(2 + b) for op in space.ops),
            )
            for cell in CELL_NAMES
            for b in range(space.num_blocks)
            for x in BRANCHES
        )
        first_slot = {cell: 2 * space.num_blocks * c for c, cell in enumerate(CELL_NAMES)}
        filters = space.filters
        self.stem = layers.Conv2D(filters, 3, space.stem_strides, padding="same", use_bias=False)
        self.stem_bn = GhostBatchNorm()
        # Heights of the previous two cells' outputs (the stem's at first).
        height = space.input_shape[0]
        prev_prev_h = prev_h = None if height is None else -(-height // space.stem_strides)
        self.cells: list[_Cell] = []

        def add_cell(kind: str) -> None:
            nonlocal prev_prev_h, prev_h
            strides = 2 if prev_prev_h != prev_h else 1
            cell = _Cell(
                space,
                kind,
                filters,
                strides,
                first_slot[kind],
                self.max_candidates,
                affine,
                name=f"cell{len(self.cells)}_{kind}",
            )
            self.cells.append(cell)
            halved = None if prev_h is None else (prev_h + 1) // 2
            prev_prev_h, prev_h = prev_h, halved if kind == "reduction" else prev_h

        for stage in range(space.num_reductions + 1):
            for _ in range(space.num_cells):
                add_cell("normal")
            if stage < space.num_reductions:
                filters *= 2
                add_cell("reduction")
        self.pool = layers.GlobalAveragePooling2D()
        self.classifier = layers.Dense(space.num_classes)
        self.build_all()

    def call(self, x, weights, active, training: bool = False, calibrate: bool = False):
        x = self.stem_bn(self.stem(x), training=training, calibrate=calibrate)
        prev_prev = prev = x
        for cell in self.cells:
            out = cell(prev, prev_prev, weights, active, training=training, calibrate=calibrate)
            prev_prev, prev = prev, out
        return self.classifier(self.pool(ops.relu(prev)))

    def candidate_kernels(self) -> list[list[list[Any]]]:
        found: list[list[list[Any]]] = [[[] for _ in slot.candidates] for slot in self.slots]
        for cell in self.cells:
            for s, branch in enumerate(cell.branches):
                for k, op in enumerate(branch.candidates):
                    found[cell.first_slot + s][k].extend(_kernels(op))
        return found

    def export_path(self, values: Mapping[str, Scalar]) -> keras.Model:
        indices = self.indices(values)
        inputs = keras.Input(shape=self.space.input_shape)
        x = export_batch_norm(self.stem_bn, copy_layer(self.stem, inputs))
        # Each tensor with the rows of the supernet's tensor it holds (None: all of them).
        prev_prev, prev_prev_rows = prev, prev_rows = x, None
        for cell in self.cells:
            out, rows = cell.export(prev, prev_prev, prev_rows, prev_prev_rows, indices)
            prev_prev, prev_prev_rows, prev, prev_rows = prev, prev_rows, out, rows
        x = layers.GlobalAveragePooling2D()(layers.ReLU()(prev))
        if self.space.dropout:
            x = layers.Dropout(self.space.dropout)(x)
        outputs = classifier_head(x, self.space.num_classes)
        name = f"{self.space.name}_{self.space.decode(values).hash()[:8]}"
        model = keras.Model(inputs, outputs, name=name)
        kernel, bias = self.classifier.get_weights()
        model.get_layer("classifier").set_weights([kernel[prev_rows], bias])
        return model
