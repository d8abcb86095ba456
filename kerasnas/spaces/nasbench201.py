"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 4 nodes, 6 edges, 5 ops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from kerasnas.architecture import Architecture, Cell, Scalar
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import Decision, SearchSpace, classifier_head
from kerasnas.spaces.encoding import PathEncoder

#: The benchmark's five edge ops, in the benchmark's order.
EDGE_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The six edges `(to, from)`, in the order of the benchmark's arch string.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
CELL_NAME = "cell"
#: Vertex labels of the cell's nodes once turned into a vertex-labelled graph.
INPUT_LABEL = "input_0"
ADD_LABEL = "add"
OUTPUT_LABEL = "output"
EXAMPLE_STRING = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def edge_name(to_node: int, from_node: int) -> str:
    """The decision name of the edge into node `to_node` from node `from_node`."""
    return f"edge_{to_node}_{from_node}"


class NASBench201Space(SearchSpace):
    """The NAS-Bench-201 search space (Dong & Yang, ICLR 2020).

    A cell is a complete DAG on 4 nodes: node 0 is the cell's input, node 3 its
    output, and each of the 6 edges i -> j (i < j) carries one of `none`,
    `skip_connect`, `nor_conv_1x1`, `nor_conv_3x3` or `avg_pool_3x3`. A node's
    value is the sum of its incoming edges, so there are 5**6 = 15,625 cells.
    The network repeats one cell in the benchmark's ResNet-like skeleton: a
    3x3 convolution stem, 3 stages of `cells_per_stage` cells with
    `stem_filters`, twice and four times as many channels, a residual block
    with stride 2 between stages, then BN-ReLU, global average pooling and a
    softmax classifier.

    The decisions are the 6 edges, in the order of the benchmark's arch string:
    `edge_1_0`, `edge_2_0`, `edge_2_1`, `edge_3_0`, `edge_3_1`, `edge_3_2`
    (`edge_{j}_{i}` is the edge to node j from node i). `key(values)` and
    `to_string()` give the benchmark's arch string (e.g.
    `"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|..."`),
    and `from_string()` reads one.

    As an `Architecture`, the cell is turned into a vertex-labelled graph: node
    0 is an `input_0` vertex, nodes 1 and 2 are `add` vertices, node 3 is the
    `output` vertex, and each non-`none` edge becomes a vertex labelled with
    its op between its two nodes' vertices. So isomorphic cells (for example
    nodes 1 and 2 swapped when no edge joins them) hash equal, and parts that
    cannot contribute to the output are pruned.

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        stem_filters: Channels of the stem and of the first stage (C). The
            benchmark uses 16. Defaults to 16.
        cells_per_stage: Cells per stage (N). The benchmark uses 5. Defaults to 5.
        learning_rate: Adam learning rate of the compiled models. Defaults to 1e-3.
        ops: The edge ops to choose from: a subset of the five (at least two), kept
            in the benchmark's order. TransNAS-Bench-101's micro cell is this cell
            without `avg_pool_3x3` (4**6 = 4,096 cells). Defaults to all five.
        name: The space's name.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "num_cells": "cells_per_stage",
        "filters": "stem_filters",
        "learning_rate": "learning_rate",
    }

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        stem_filters: int = 16,
        cells_per_stage: int = 5,
        learning_rate: float = 1e-3,
        ops: Sequence[str] = EDGE_OPS,
        name: str = "nasbench201",
    ):
        for arg, value in (("stem_filters", stem_filters), ("cells_per_stage", cells_per_stage)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be an integer >= 1. Received: {arg}={value!r}.")
        if learning_rate <= 0:
            raise ValueError(
                f"learning_rate must be positive. Received: learning_rate={learning_rate}."
            )
        if isinstance(ops, str) or not all(isinstance(op, str) for op in ops):
            raise ValueError(f"ops must be a list of op names. Received: ops={ops!r}.")
        unknown = [op for op in ops if op not in EDGE_OPS]
        if unknown or len(set(ops)) < 2:
            raise ValueError(
                f"ops must name at least two of the NAS-Bench-201 ops {list(EDGE_OPS)}. "
                f"Received: ops={list(ops)!r}" + (f" (unknown: {unknown})." if unknown else ".")
            )
        self.ops = tuple(op for op in EDGE_OPS if op in ops)
        self.stem_filters = stem_filters
        self.cells_per_stage = cells_per_stage
        self.learning_rate = float(learning_rate)
        self._decisions = tuple(Decision(edge_name(j, i), self.ops) for j, i in EDGES)
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "stem_filters": self.stem_filters,
            "cells_per_stage": self.cells_per_stage,
            "learning_rate": self.learning_rate,
        }
        if self.ops != EDGE_OPS:  # Projects of the five ops stored no `ops`: they still resume.
            config["ops"] = list(self.ops)
        return config

    def key(self, values: Mapping[str, Scalar]) -> str:
        """The benchmark's arch string of these decision values (its table key)."""
        return self.to_string(values)

    # -- Decisions <-> architecture ----------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        return Architecture(cells={CELL_NAME: _cell_of(values)})

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        if set(arch.cells) != {CELL_NAME} or arch.choices:
            raise OutOfSpaceError(
                f"A NASBench201Space architecture has exactly one cell, named "
                f"{CELL_NAME!r}, and no choices. Received: {arch!r}."
            )
        values = _encode_cell(arch.cells[CELL_NAME])
        self.check_values(values)
        if self.decode(values).hash() != arch.hash():
            # A safety net: the checks above should make this unreachable.
            raise OutOfSpaceError(
                f"The cell is not a NAS-Bench-201 cell: its closest reading, "
                f"{self.to_string(values)!r}, is a different graph."
            )
        return values

    def encode_paths(self, arch: Architecture) -> np.ndarray:
        """The path encoding of the cell (`kerasnas.spaces.encoding`; used by BANANAS).

        One 0/1 feature per sequence of 0 to 3 non-`none` ops on a path from
        node 0 to node 3: 85 features with the five ops, 40 without `avg_pool_3x3`.
        """
        self.encode(arch)  # Validates that the architecture belongs to the space.
        labels = tuple(op for op in self.ops if op != "none")
        encoder = PathEncoder((CELL_NAME,), (INPUT_LABEL,), labels, NUM_NODES - 1)
        return encoder.encode(arch.cells)

    # -- The benchmark's arch strings ----------------------------------------
    def to_string(self, arch_or_values: Architecture | Mapping[str, Scalar]) -> str:
        """The benchmark's arch string of an architecture or of decision values.

        Decision values give exactly the string they describe. An architecture
        gives the string of `encode(arch)`, one of the strings of the cells
        isomorphic to it.

        Args:
            arch_or_values: An `Architecture` of this space, or a dict of
                decision values.

        Returns:
            A string like `"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|"
            "skip_connect~0|nor_conv_3x3~1|skip_connect~2|"`: node 1's incoming
            edges, then node 2's, then node 3's, each `op~source`.
        """
        if isinstance(arch_or_values, Architecture):
            values: Mapping[str, Scalar] = self.encode(arch_or_values)
        elif isinstance(arch_or_values, Mapping):
            values = arch_or_values
            self.check_values(values)
        else:
            raise ValueError(
                "to_string() takes an Architecture or a dict of decision values. "
                f"Received: {arch_or_values!r} of type {type(arch_or_values).__name__}."
            )
        return "+".join(
            "|" + "".join(f"{values[edge_name(j, i)]}~{i}|" for i in range(j))
            for j in range(1, NUM_NODES)
        )

    def values_from_string(self, arch_string: str) -> dict[str, Scalar]:
        """The decision values of a benchmark arch string.

        `to_string(values_from_string(s)) == s` for every valid string.

        Args:
            arch_string: A string like `"|nor_conv_3x3~0|+|nor_conv_3x3~0|"
                "avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"`.

        Raises:
            ValueError: if the string is not a NAS-Bench-201 arch string.
        """
        if not isinstance(arch_string, str):
            raise ValueError(
                "A NAS-Bench-201 arch string must be a str. Received: "
                f"{arch_string!r} of type {type(arch_string).__name__}."
            )
        text = arch_string.strip()
        hint = f"A valid string looks like {EXAMPLE_STRING!r}."
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"A NAS-Bench-201 arch string lists the incoming edges of nodes 1, 2 "
                f"and 3, separated by '+'. Received {len(nodes)} part(s) in "
                f"{arch_string!r}. {hint}"
            )
        values: dict[str, Scalar] = {}
        for j, part in enumerate(nodes, start=1):
            if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
                raise ValueError(
                    f"Node {j}'s part of the arch string must start and end with '|'. "
                    f"Received: {part!r} in {arch_string!r}. {hint}"
                )
            edges = part[1:-1].split("|")
            if len(edges) != j:
                raise ValueError(
                    f"Node {j} must list exactly {j} incoming edge(s), one from each of "
                    f"nodes {list(range(j))}. Received {len(edges)}: {part!r}. {hint}"
                )
            for i, edge in enumerate(edges):
                op, sep, source = edge.partition("~")
                if not sep:
                    raise ValueError(
                        f"Each edge of the arch string is written 'op~source'. Received: "
                        f"{edge!r} in node {j}'s part {part!r}. {hint}"
                    )
                if op not in EDGE_OPS:
                    raise ValueError(
                        f"Unknown op {op!r} in the arch string {arch_string!r}. The "
                        f"NAS-Bench-201 ops are {list(EDGE_OPS)}."
                    )
                if source != str(i):
                    raise ValueError(
                        f"Node {j}'s edge number {i} must come from node {i} (edges are "
                        f"listed by source, 0 to {j - 1}). Received: {edge!r} in "
                        f"{arch_string!r}. {hint}"
                    )
                values[edge_name(j, i)] = op
        return values

    def from_string(self, arch_string: str) -> Architecture:
        """The architecture of a benchmark arch string.

        Args:
            arch_string: A string like `"|nor_conv_3x3~0|+|nor_conv_3x3~0|"
                "avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"`.

        Raises:
            ValueError: if the string is not a NAS-Bench-201 arch string.
        """
        return self.decode(self.values_from_string(arch_string))

    # -- Building -------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        self.encode(arch)  # Validates that the architecture belongs to the space.
        cell = arch.cells[CELL_NAME]
        inputs = keras.Input(shape=self.input_shape)
        x = layers.Conv2D(self.stem_filters, 3, padding="same", use_bias=False)(inputs)
        x = ops_module.batch_norm()(x)
        for stage in range(3):
            filters = self.stem_filters * 2**stage
            if stage > 0:
                x = _residual_block(x, filters)
            for _ in range(self.cells_per_stage):
                x = _build_cell(cell, x, filters)
        x = ops_module.batch_norm()(x)
        x = layers.ReLU()(x)
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{arch.hash()[:8]}")
        return self.compile_model(model)


def _cell_of(values: Mapping[str, Scalar]) -> Cell:
    """The vertex-labelled form of the edge-labelled cell `values` describe."""
    labels = [INPUT_LABEL, ADD_LABEL, ADD_LABEL, OUTPUT_LABEL]
    edges = []
    for j, i in EDGES:
        op = str(values[edge_name(j, i)])
        if op != "none":
            labels.append(op)
            v = len(labels) - 1
            edges += [(i, v), (v, j)]
    n = len(labels)
    matrix = [[0] * n for _ in range(n)]
    for u, w in edges:
        matrix[u][w] = 1
    return Cell(matrix, labels)


def _encode_cell(cell: Cell) -> dict[str, Scalar]:
    """Reads the edge ops back from a vertex-labelled cell."""
    ops = cell.ops

    def fail(why: str):
        raise OutOfSpaceError(f"The cell is not a NAS-Bench-201 cell: {why}. Cell: {cell!r}.")

    inputs = [label for label in ops if label.startswith("input")]
    if inputs != [INPUT_LABEL]:
        fail(f"it must have the one input {INPUT_LABEL!r}, not {inputs}")
    values: dict[str, Scalar] = {edge_name(j, i): "none" for j, i in EDGES}
    if not cell.is_connected:
        return values
    # Nodes 1 and 2 are the `add` vertices, in topological order.
    node_of = {ops.index(INPUT_LABEL): 0, ops.index(OUTPUT_LABEL): NUM_NODES - 1}
    adds = [v for v in cell.topological_order() if ops[v] == ADD_LABEL]
    if len(adds) > NUM_NODES - 2:
        fail(f"it has {len(adds)} {ADD_LABEL!r} vertices, at most {NUM_NODES - 2} fit")
    for k, v in enumerate(adds, start=1):
        node_of[v] = k
    for v, label in enumerate(ops):
        if v in node_of:
            if any(w in node_of for w in cell.successors(v)):
                fail(f"vertex {v} ({label!r}) leads straight to a node, not through an op")
            continue
        if label not in EDGE_OPS or label == "none":
            fail(f"op {label!r} is not one of {list(EDGE_OPS[1:])}")
        preds, succs = cell.predecessors(v), cell.successors(v)
        if len(preds) != 1 or len(succs) != 1:
            fail(f"op vertex {v} ({label!r}) must have one input and one output")
        source, target = node_of.get(preds[0]), node_of.get(succs[0])
        if source is None or target is None or source >= target:
            fail(f"op vertex {v} ({label!r}) does not join an earlier node to a later one")
        name = edge_name(target, source)
        if values[name] != "none":
            fail(f"two ops join node {source} to node {target}")
        values[name] = label
    return values


def _residual_block(x, filters: int):
    """The benchmark's ResNet basic block with stride 2, between stages."""
    branch = ops_module.relu_conv_bn(x, filters, 3, strides=2)
    branch = ops_module.relu_conv_bn(branch, filters, 3)
    # "same" padding keeps odd sizes in step with the strided convolution.
    shortcut = layers.AveragePooling2D(pool_size=2, strides=2, padding="same")(x)
    shortcut = layers.Conv2D(filters, 1, use_bias=False)(shortcut)
    return layers.Add()([shortcut, branch])


def _sum(tensors: list):
    return tensors[0] if len(tensors) == 1 else layers.Add()(tensors)


def _build_cell(cell: Cell, x, filters: int):
    """Builds one cell on the tensor `x` (which has `filters` channels)."""
    tensors = {}
    for v in cell.topological_order():
        label = cell.ops[v]
        preds = [tensors[u] for u in cell.predecessors(v)]
        if label == INPUT_LABEL:
            tensors[v] = x
        elif label == OUTPUT_LABEL:
            # No path reaches the output: the cell computes zeros.
            tensors[v] = _sum(preds) if preds else layers.Rescaling(0.0)(x)
        elif label == ADD_LABEL:
            tensors[v] = _sum(preds)
        elif label == "skip_connect":
            tensors[v] = preds[0]
        elif label == "nor_conv_1x1":
            tensors[v] = ops_module.relu_conv_bn(preds[0], filters, 1)
        elif label == "nor_conv_3x3":
            tensors[v] = ops_module.relu_conv_bn(preds[0], filters, 3)
        elif label == "avg_pool_3x3":
            tensors[v] = layers.AveragePooling2D(pool_size=3, strides=1, padding="same")(preds[0])
        else:  # encode() has refused anything else.
            raise OutOfSpaceError(f"Unknown NAS-Bench-201 op {label!r}.")
    return tensors[cell.ops.index(OUTPUT_LABEL)]
