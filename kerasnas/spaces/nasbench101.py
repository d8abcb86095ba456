"""The NAS-Bench-101 cell space and its benchmark hash (its tfrecord files: nasbench101_records).

Ying, Klein, Christiansen, Real, Murphy & Hutter, "NAS-Bench-101: Towards
Reproducible Neural Architecture Search" (ICML 2019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from kerasnas.architecture import Architecture, Cell, Scalar, graph_hash
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import Decision, SearchSpace, classifier_head
from kerasnas.spaces.encoding import PathEncoder
from kerasnas.spaces.nasbench101_records import (  # noqa: F401 - their old home
    NASBenchEvaluation,
    NASBenchRecord,
    read_nasbench_tfrecord,
)

#: The benchmark's operations, in its canonical order (the order its hash uses).
NASBENCH_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
#: Most vertices of a cell, input and output included.
NUM_VERTICES = 7
#: Most edges of a cell (after pruning).
MAX_EDGES = 9
INPUT = "input"
OUTPUT = "output"
CELL_NAME = "cell"

# Hash labels of the input and output vertices (operations are labelled by
# their index in NASBENCH_OPS), as in NAS-Bench-101's `ModelSpec.hash_spec`.
_INPUT_LABEL = -1
_OUTPUT_LABEL = -2
# Upper-triangular vertex pairs, row by row: (0, 1), (0, 2), ..., (5, 6).
_EDGES = tuple((i, j) for i in range(NUM_VERTICES) for j in range(i + 1, NUM_VERTICES))
# Most intermediate vertices that can feed the output: each needs an edge in
# and an edge out, within MAX_EDGES.
_MAX_FEEDERS = MAX_EDGES // 2
# Redraws before `sample` or `mutate` give up (about 3 uniform draws in 4 are valid).
_MAX_DRAWS = 10_000


class NASBench101Space(SearchSpace):
    """The cell space of NAS-Bench-101 (Ying et al. 2019).

    A cell is a DAG of at most 7 vertices: an input, up to 5 operations
    (`conv3x3-bn-relu`, `conv1x1-bn-relu` or `maxpool3x3`) and an output,
    joined by at most 9 edges that go from lower- to higher-numbered vertices.
    Vertices off every input-to-output path are pruned (as the benchmark's
    `ModelSpec` does); a cell whose input does not reach its output, or with
    more than 9 edges once pruned, is outside the space (`OutOfSpaceError`).

    The decisions are the 21 upper-triangular adjacency bits `edge_{i}_{j}`
    (0 <= i < j <= 6, choices 0 and 1) and the operations `op_1` .. `op_5` of
    the intermediate vertices. `sample` and `mutate` redraw until the cell is
    valid, so they only return architectures of the benchmark (like the
    benchmark's own random search, uniform draws favour small cells).
    `nasbench_hash` (also `key`) is the benchmark's own module hash, the key
    of its tfrecord files (see `read_nasbench_tfrecord`); `from_spec` and
    `to_spec` convert to and from the benchmark's `(matrix, ops)` specs.

    The network is the benchmark's: a 3x3 conv-BN-ReLU stem with
    `stem_filters` channels, `num_stacks` stacks of `cells_per_stack` cells,
    a 2x2 max-pool and a doubling of the channels between stacks, global
    average pooling and a softmax classifier. Inside a cell, each vertex sums
    its inputs (the cell input is first projected by a 1x1 conv-BN-ReLU to
    the vertex's channels), and the output concatenates the vertices that
    feed it, plus the projected input when the input feeds the output
    directly. Vertex channels follow the benchmark's rule
    (`compute_vertex_channels`).

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        stem_filters: Channels of the stem and of the first stack's cells.
            Defaults to 128, the benchmark's.
        num_stacks: Stacks of cells. Defaults to 3.
        cells_per_stack: Cells per stack. Defaults to 3.
        learning_rate: Adam learning rate of the compiled models. Defaults to 1e-3.
        name: The space's name.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set;
    #: `(argument, offset)`: the argument is the flag's value plus offset.
    cli_flags = {
        "num_cells": "cells_per_stack",
        "num_reductions": ("num_stacks", 1),  # Stacks are separated by downsamplings.
        "filters": "stem_filters",
        "learning_rate": "learning_rate",
    }

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        stem_filters: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        learning_rate: float = 1e-3,
        name: str = "nasbench101",
    ):
        for arg, value, low in (
            ("num_stacks", num_stacks, 1),
            ("cells_per_stack", cells_per_stack, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{arg} must be an integer >= {low}. Received: {arg}={value!r}.")
        if not isinstance(stem_filters, int) or stem_filters < _MAX_FEEDERS:
            raise ValueError(
                f"stem_filters must be an integer >= {_MAX_FEEDERS}: a cell's output "
                f"channels are split among the (up to {_MAX_FEEDERS}) vertices that feed it. "
                f"Received: stem_filters={stem_filters!r}."
            )
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}.")
        self.stem_filters = stem_filters
        self.num_stacks = num_stacks
        self.cells_per_stack = cells_per_stack
        self.learning_rate = float(learning_rate)
        self._decisions = tuple(Decision(f"edge_{i}_{j}", (0, 1)) for i, j in _EDGES) + tuple(
            Decision(f"op_{v}", NASBENCH_OPS) for v in range(1, NUM_VERTICES - 1)
        )
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "stem_filters": self.stem_filters,
            "num_stacks": self.num_stacks,
            "cells_per_stack": self.cells_per_stack,
            "learning_rate": self.learning_rate,
        }

    # -- Decisions <-> architecture ----------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        matrix = [[0] * NUM_VERTICES for _ in range(NUM_VERTICES)]
        for i, j in _EDGES:
            matrix[i][j] = int(values[f"edge_{i}_{j}"])
        ops = [INPUT] + [str(values[f"op_{v}"]) for v in range(1, NUM_VERTICES - 1)] + [OUTPUT]
        return self.from_spec(matrix, ops)

    def from_spec(self, matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Architecture:
        """The architecture of a NAS-Bench-101 spec (as `nasbench.api.ModelSpec` takes).

        Args:
            matrix: Square 0/1 adjacency matrix of the cell, e.g. a record's
                `matrix` (see `read_nasbench_tfrecord`). Usually upper
                triangular with the input first and the output last, but any
                vertex numbering of a DAG is accepted.
            ops: One label per vertex: `"input"`, `"output"` and operations
                from `NASBENCH_OPS`.

        Returns:
            The architecture, with the cell pruned.

        Raises:
            OutOfSpaceError: if the pruned cell is not in NAS-Bench-101 (input
                not connected to the output, more than 7 vertices or 9 edges,
                unknown operations).
            ValueError: if `matrix` is not a square 0/1 matrix of a DAG.
        """
        ops = [str(op) for op in ops]
        if ops.count(INPUT) != 1 or ops.count(OUTPUT) != 1:
            raise OutOfSpaceError(
                f"A NAS-Bench-101 cell has exactly one {INPUT!r} and one {OUTPUT!r} "
                f"vertex. Received: ops={ops}."
            )
        cell = Cell(matrix, ops)
        _check_cell(cell)
        return Architecture(cells={CELL_NAME: cell})

    def to_spec(self, arch: Architecture) -> tuple[list[list[int]], list[str]]:
        """The pruned, upper-triangular spec of an architecture of this space.

        Args:
            arch: An architecture of this space.

        Returns:
            `(matrix, ops)`: the adjacency matrix with the input first, the
            output last and every edge going to a higher-numbered vertex, and
            the vertex labels.

        Raises:
            OutOfSpaceError: if `arch` is not in the space.
        """
        if set(arch.cells) != {CELL_NAME} or arch.choices:
            raise OutOfSpaceError(
                f"A NASBench101Space architecture has exactly one cell, {CELL_NAME!r}, "
                f"and no choices. Received: {arch!r}."
            )
        cell = arch.cells[CELL_NAME]
        _check_cell(cell)
        # The input is the only source and the output the only sink of a
        # pruned cell, so a topological order puts them first and last; on an
        # upper-triangular cell it is the identity.
        order = cell.topological_order()
        matrix = [[cell.matrix[u][w] for w in order] for u in order]
        return matrix, [cell.ops[v] for v in order]

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        matrix, ops = self.to_spec(arch)
        n = len(ops)
        # Pad back to 7 vertices: vertices n-1 .. 5 get no edges (so decode
        # prunes them) and the first op; the output moves to vertex 6.
        position = list(range(n - 1)) + [NUM_VERTICES - 1]
        full = [[0] * NUM_VERTICES for _ in range(NUM_VERTICES)]
        for u in range(n):
            for w in range(n):
                full[position[u]][position[w]] = matrix[u][w]
        padded_ops = ops[1:-1] + [NASBENCH_OPS[0]] * (NUM_VERTICES - n)
        values: dict[str, Scalar] = {f"edge_{i}_{j}": full[i][j] for i, j in _EDGES}
        values.update({f"op_{v}": padded_ops[v - 1] for v in range(1, NUM_VERTICES - 1)})
        self.check_values(values)
        return values

    def encode_paths(self, arch: Architecture) -> np.ndarray:
        """The path encoding of the cell (`kerasnas.spaces.encoding`; used by BANANAS).

        One 0/1 feature per sequence of 0 to 5 ops on an input-to-output
        path: 1 + 3 + 9 + 27 + 81 + 243 = 364 features, as in the paper.
        """
        self.to_spec(arch)  # Validates that the architecture belongs to the space.
        encoder = PathEncoder((CELL_NAME,), (INPUT,), NASBENCH_OPS, NUM_VERTICES - 2)
        return encoder.encode(arch.cells)

    def nasbench_hash(self, arch: Architecture | Mapping[str, Scalar]) -> str:
        """NAS-Bench-101's module hash: the key of the benchmark's records.

        Equal to `nasbench.api.ModelSpec(matrix, ops).hash_spec(NASBENCH_OPS)`
        for the spec the architecture or decision values stand for.

        Args:
            arch: An architecture of this space, or decision values.

        Returns:
            A 32-character hex string.
        """
        if not isinstance(arch, Architecture):
            arch = self.decode(arch)
        matrix, ops = self.to_spec(arch)
        labels = [_INPUT_LABEL] + [NASBENCH_OPS.index(op) for op in ops[1:-1]] + [_OUTPUT_LABEL]
        return graph_hash(matrix, labels)

    def key(self, values: Mapping[str, Scalar]) -> str:
        """The benchmark's module hash of the architecture (see `nasbench_hash`)."""
        return self.nasbench_hash(values)

    # -- Sampling -----------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draws each decision uniformly at random, again until the cell is valid."""
        for _ in range(_MAX_DRAWS):
            values = {d.name: d.choices[rng.integers(len(d.choices))] for d in self.decisions}
            try:
                return self.decode(values)
            except OutOfSpaceError:
                continue
        raise OutOfSpaceError(f"No valid cell in {_MAX_DRAWS} random draws.")

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, mutation_rate: float = 1.0
    ) -> Architecture:
        """NAS-Bench-101's mutation: flips edges and changes ops at random.

        Starting from `encode(arch)`, each of the 21 edge bits flips with
        probability `mutation_rate / 7` and each of the 5 ops changes (to
        another op) with probability `mutation_rate / 5`, as in the
        benchmark's regularized-evolution example; this is redrawn until the
        cell is valid and differs from `arch` (by its hash).

        Args:
            arch: An architecture of this space.
            rng: The random generator.
            mutation_rate: Scales the flip and change probabilities (in
                expectation `3 * mutation_rate` bits flip and
                `mutation_rate` ops change). Defaults to 1.

        Returns:
            A valid architecture, not isomorphic to `arch`.
        """
        if mutation_rate <= 0:
            raise ValueError(f"mutation_rate must be positive. Received: {mutation_rate}.")
        values = self.encode(arch)
        edge_p = mutation_rate / NUM_VERTICES
        op_p = mutation_rate / (NUM_VERTICES - 2)
        for _ in range(_MAX_DRAWS):
            child = dict(values)
            for i, j in _EDGES:
                if rng.random() < edge_p:
                    child[f"edge_{i}_{j}"] = 1 - int(child[f"edge_{i}_{j}"])
            for v in range(1, NUM_VERTICES - 1):
                if rng.random() < op_p:
                    others = [op for op in NASBENCH_OPS if op != child[f"op_{v}"]]
                    child[f"op_{v}"] = others[rng.integers(len(others))]
            try:
                candidate = self.decode(child)
            except OutOfSpaceError:
                continue
            if candidate != arch:
                return candidate
        raise OutOfSpaceError(f"No valid, different cell in {_MAX_DRAWS} mutations of {arch!r}.")

    # -- Building -------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        matrix, ops = self.to_spec(arch)
        inputs = keras.Input(shape=self.input_shape)
        x = _conv_bn_relu(inputs, self.stem_filters, 3)
        channels = self.stem_filters
        for stack in range(self.num_stacks):
            if stack > 0:
                x = layers.MaxPooling2D(pool_size=2, strides=2, padding="same")(x)
                channels *= 2
            for _ in range(self.cells_per_stack):
                x = _build_cell(matrix, ops, x, channels)
        x = layers.GlobalAveragePooling2D()(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{arch.hash()[:8]}")
        return self.compile_model(model)


def _check_cell(cell: Cell) -> None:
    """Raises OutOfSpaceError unless a (pruned) cell is in NAS-Bench-101."""
    ops = cell.ops
    inputs = [op for op in ops if op.startswith(INPUT)]
    if inputs != [INPUT]:
        raise OutOfSpaceError(
            f"A NAS-Bench-101 cell has exactly one input vertex, labelled {INPUT!r}. "
            f"Received input labels {inputs}."
        )
    if not cell.is_connected:
        raise OutOfSpaceError(
            "The cell is disconnected: no path leads from its input to its output, "
            "so NAS-Bench-101 excludes it. Connect the input to the output, "
            "directly or through operations."
        )
    unknown = sorted({op for op in ops if op not in (INPUT, OUTPUT, *NASBENCH_OPS)})
    if unknown:
        raise OutOfSpaceError(
            f"Unknown NAS-Bench-101 operation(s) {unknown}. The operations are "
            f"{list(NASBENCH_OPS)}."
        )
    if cell.num_vertices > NUM_VERTICES:
        raise OutOfSpaceError(
            f"The cell has {cell.num_vertices} vertices after pruning; NAS-Bench-101 "
            f"cells have at most {NUM_VERTICES} (input and output included)."
        )
    num_edges = sum(map(sum, cell.matrix))
    if num_edges > MAX_EDGES:
        raise OutOfSpaceError(
            f"The cell has {num_edges} edges after pruning; NAS-Bench-101 excludes "
            f"cells with more than {MAX_EDGES}. Remove edges."
        )


def compute_vertex_channels(
    input_channels: int, output_channels: int, matrix: Sequence[Sequence[int]]
) -> list[int]:
    """Channels of every vertex of a pruned cell, by NAS-Bench-101's rule.

    The output's channels are split as evenly as possible among the vertices
    that feed it (earlier vertices get the remainder, one channel each);
    every other intermediate vertex gets the largest channel count among the
    intermediate vertices it feeds. The input keeps its channels.

    Args:
        input_channels: Channels of the cell's input.
        output_channels: Channels of the cell's output.
        matrix: Pruned, upper-triangular adjacency matrix (input first,
            output last).

    Returns:
        One channel count per vertex.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0] = input_channels
    channels[-1] = output_channels
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    if not feeders or output_channels < len(feeders):
        raise ValueError(
            f"Cannot split {output_channels} output channels among the {len(feeders)} "
            "intermediate vertices that feed the output; the matrix must be pruned and "
            "the output channels at least that count."
        )
    share, extra = divmod(output_channels, len(feeders))
    for rank, v in enumerate(feeders):
        channels[v] = share + (1 if rank < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


def _conv_bn_relu(x, filters: int, kernel_size: int):
    """NAS-Bench-101's conv-BN-ReLU (post-activation; LeCun-normal init as its TF1 default)."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=False,
        kernel_initializer="lecun_normal",
    )(x)
    x = ops_module.batch_norm()(x)
    return layers.ReLU()(x)


def _truncate(x, channels: int):
    """Keeps the first `channels` channels (built-in layers only: no Lambda)."""
    height, width, have = x.shape[1:]
    if have == channels:
        return x
    x = layers.Reshape((height, width, have, 1))(x)
    x = layers.Cropping3D(((0, 0), (0, 0), (0, have - channels)))(x)
    return layers.Reshape((height, width, channels))(x)


def _build_cell(matrix: list[list[int]], ops: list[str], x, channels: int):
    """Builds one NAS-Bench-101 cell on `x`; returns its output with `channels` channels."""
    n = len(ops)
    vertex_channels = compute_vertex_channels(x.shape[-1], channels, matrix)
    tensors = [x]
    concat = []
    for t in range(1, n - 1):
        summands = [_truncate(tensors[s], vertex_channels[t]) for s in range(1, t) if matrix[s][t]]
        if matrix[0][t]:
            summands.append(_conv_bn_relu(x, vertex_channels[t], 1))
        h = summands[0] if len(summands) == 1 else layers.Add()(summands)
        if ops[t] == "maxpool3x3":
            h = layers.MaxPooling2D(pool_size=3, strides=1, padding="same")(h)
        else:
            h = _conv_bn_relu(h, vertex_channels[t], 3 if ops[t] == "conv3x3-bn-relu" else 1)
        tensors.append(h)
        if matrix[t][n - 1]:
            concat.append(h)
    if not concat:  # Only the input feeds the output.
        return _conv_bn_relu(x, channels, 1)
    out = concat[0] if len(concat) == 1 else layers.Concatenate()(concat)
    if matrix[0][n - 1]:
        out = layers.Add()([out, _conv_bn_relu(x, channels, 1)])
    return out
