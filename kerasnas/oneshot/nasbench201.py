"""The supernet of the NAS-Bench-201 space: all 5 ops on each of the cell's 6 edges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from kerasnas.architecture import Scalar
from kerasnas.oneshot.supernet import (
    GhostBatchNorm,
    MixedOp,
    ReLUConvBN,
    Slot,
    Supernet,
    check_space,
    copy_layer,
    export_batch_norm,
)
from kerasnas.spaces.base import classifier_head
from kerasnas.spaces.nasbench201 import EDGE_OPS, EDGES, NUM_NODES, NASBench201Space, edge_name


class _ResidualBlock(layers.Layer):
    """The benchmark's stride-2 basic block between stages."""

    def __init__(self, filters: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.a = ReLUConvBN(filters, 3, strides=2)
        self.b = ReLUConvBN(filters, 3)
        self.pool = layers.AveragePooling2D(pool_size=2, strides=2, padding="same")
        self.shortcut = layers.Conv2D(filters, 1, use_bias=False)

    def call(self, x, training: bool = False, calibrate: bool = False):
        branch = self.a(x, training=training, calibrate=calibrate)
        branch = self.b(branch, training=training, calibrate=calibrate)
        return self.shortcut(self.pool(x)) + branch

    def export(self, x):
        branch = self.b.export(self.a.export(x))
        shortcut = copy_layer(self.shortcut, copy_layer(self.pool, x))
        return layers.Add()([shortcut, branch])


def _edge_ops(filters: int, affine: bool) -> list[Any]:
    """The candidates of one edge, in `EDGE_OPS` order."""
    return [
        None,  # none
        layers.Identity(),  # skip_connect
        ReLUConvBN(filters, 1, affine=affine),  # nor_conv_1x1
        ReLUConvBN(filters, 3, affine=affine),  # nor_conv_3x3
        layers.AveragePooling2D(pool_size=3, strides=1, padding="same"),  # avg_pool_3x3
    ]


class _Cell(layers.Layer):
    def __init__(self, filters: int, affine: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.edges = [MixedOp(_edge_ops(filters, affine)) for _ in EDGES]

    def call(self, x, weights, active, training: bool = False, calibrate: bool = False):
        nodes = [x]
        for j in range(1, NUM_NODES):
            total = None
            for e, (to, source) in enumerate(EDGES):
                if to != j:
                    continue
                y = self.edges[e](
                    nodes[source], weights[e], active[e], training=training, calibrate=calibrate
                )
                total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]

    def export(self, x, live: list[int], indices: list[int]):
        nodes: dict[int, Any] = {0: x}
        for j in range(1, NUM_NODES):
            inputs = []
            for e, (to, source) in enumerate(EDGES):
                if to != j or e not in live:
                    continue
                op = self.edges[e].candidates[indices[e]]
                h = nodes[source]
                if isinstance(op, ReLUConvBN):
                    inputs.append(op.export(h))
                elif isinstance(op, layers.AveragePooling2D):
                    inputs.append(copy_layer(op, h))
                else:  # skip_connect
                    inputs.append(h)
            if inputs:
                nodes[j] = inputs[0] if len(inputs) == 1 else layers.Add()(inputs)
        if NUM_NODES - 1 in nodes:
            return nodes[NUM_NODES - 1]
        return layers.Rescaling(0.0)(x)  # No path reaches the output.


def live_edges(values: Mapping[str, Scalar]) -> list[int]:
    """Indices (into `EDGES`) of the edges on some input-to-output path of the cell."""
    used = [values[edge_name(j, i)] != "none" for j, i in EDGES]
    reached = {0}
    for j in range(1, NUM_NODES):
        if any(used[e] and to == j and i in reached for e, (to, i) in enumerate(EDGES)):
            reached.add(j)
    reaches_out = {NUM_NODES - 1}
    for j in range(NUM_NODES - 2, -1, -1):
        if any(used[e] and i == j and to in reaches_out for e, (to, i) in enumerate(EDGES)):
            reaches_out.add(j)
    return [e for e, (to, i) in enumerate(EDGES) if used[e] and i in reached and to in reaches_out]


class NASBench201Supernet(Supernet):
    """Every NAS-Bench-201 network in one model (the supernet of the space).

    The skeleton is the space's (stem, 3 stages of `cells_per_stage` cells,
    residual blocks between stages, BN-ReLU-pooling-classifier head), and each
    of the 6 edges of every cell holds all 5 ops. The slots are the 6 edges;
    the same path applies to every cell, as the space repeats one cell.

    Args:
        space: A configured `NASBench201Space`.
        affine: Whether the BatchNorms inside edge ops learn a scale and an
            offset (DARTS turns it off for the supernet). Defaults to False.
    """

    def __init__(self, space: NASBench201Space, affine: bool = False, **kwargs: Any):
        check_space(space, NASBench201Space, "NASBench201Supernet")
        super().__init__(name=kwargs.pop("name", "nasbench201_supernet"), **kwargs)
        self.space = space
        self.slots = tuple(
            Slot(edge_name(j, i), (edge_name(j, i),), tuple((op,) for op in EDGE_OPS))
            for j, i in EDGES
        )
        c = space.stem_filters
        self.stem = layers.Conv2D(c, 3, padding="same", use_bias=False)
        self.stem_bn = GhostBatchNorm()
        self.blocks: list[Any] = []
        for stage in range(3):
            filters = c * 2**stage
            if stage > 0:
                self.blocks.append(_ResidualBlock(filters, name=f"stage{stage}_reduce"))
            self.blocks += [
                _Cell(filters, affine, name=f"stage{stage}_cell{i}")
                for i in range(space.cells_per_stage)
            ]
        self.head_bn = GhostBatchNorm()
        self.pool = layers.GlobalAveragePooling2D()
        self.classifier = layers.Dense(space.num_classes)
        self.build_all()

    def call(self, x, weights, active, training: bool = False, calibrate: bool = False):
        x = self.stem_bn(self.stem(x), training=training, calibrate=calibrate)
        for block in self.blocks:
            if isinstance(block, _Cell):
                x = block(x, weights, active, training=training, calibrate=calibrate)
            else:
                x = block(x, training=training, calibrate=calibrate)
        x = ops.relu(self.head_bn(x, training=training, calibrate=calibrate))
        return self.classifier(self.pool(x))

    def candidate_kernels(self) -> list[list[list[Any]]]:
        found: list[list[list[Any]]] = [[[] for _ in EDGE_OPS] for _ in EDGES]
        for block in self.blocks:
            if isinstance(block, _Cell):
                for e, mixed in enumerate(block.edges):
                    for k, op in enumerate(mixed.candidates):
                        if isinstance(op, ReLUConvBN):
                            found[e][k].append(op.conv.kernel)
        return found

    def export_path(self, values: Mapping[str, Scalar]) -> keras.Model:
        indices = self.indices(values)
        live = live_edges(values)
        inputs = keras.Input(shape=self.space.input_shape)
        x = export_batch_norm(self.stem_bn, copy_layer(self.stem, inputs))
        for block in self.blocks:
            if isinstance(block, _Cell):
                x = block.export(x, live, indices)
            else:
                x = block.export(x)
        x = layers.ReLU()(export_batch_norm(self.head_bn, x))
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, self.space.num_classes)
        name = f"{self.space.name}_{self.space.decode(values).hash()[:8]}"
        model = keras.Model(inputs, outputs, name=name)
        model.get_layer("classifier").set_weights(self.classifier.get_weights())
        return model
