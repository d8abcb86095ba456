"""The NASNet / ENAS micro search space: a normal cell and a reduction cell."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from kerasnas.architecture import Architecture, Cell, Scalar
from kerasnas.cli.registry import Flag, positive
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces import ops as ops_module
from kerasnas.spaces.base import Decision, SearchSpace, classifier_head
from kerasnas.spaces.encoding import PathEncoder

DEFAULT_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
CELL_NAMES = ("normal", "reduction")
# The two cell inputs: the previous cell's output and the one before it.
CELL_INPUTS = ("input_0", "input_1")


class NASNetSpace(SearchSpace):
    """The cell-based space of NASNet (Zoph et al. 2018) and ENAS (Pham et al. 2018).

    A network is a stem, then `num_reductions + 1` stages of `num_cells`
    normal cells separated by reduction cells (which halve the resolution and
    double the filters), then global pooling and a softmax classifier. All
    normal cells share one architecture, all reduction cells another.

    A cell has `num_blocks` blocks. Block b picks two inputs among the cell's
    two inputs (the previous two cells' outputs) and blocks 0..b-1, applies one
    op to each and adds the results. Blocks that no other block uses are
    concatenated into the cell's output. In a reduction cell, ops applied to
    the cell's inputs use stride 2.

    The decisions, per cell and block, are `"{cell}/block_{b}/input_a"`,
    `"…/op_a"`, `"…/input_b"` and `"…/op_b"`; inputs are numbered 0 (previous
    cell), 1 (the one before) and 2 + k (block k).

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: Image shape `(height, width, channels)`; taken from the
            data when None.
        num_blocks: Blocks per cell. Defaults to 5.
        num_cells: Normal cells per stage (N). Defaults to 2.
        num_reductions: Reduction cells. Defaults to 2.
        filters: Filters of the first stage. Defaults to 32.
        stem_strides: Strides of the stem convolution: 1 keeps the input's
            resolution (NASNet's CIFAR stem), 2 halves it before the first
            cell, which makes every cell about 4x cheaper (for large
            images or a CPU). Defaults to 1.
        ops: Op names to choose from (see `kerasnas.spaces.ops.OPS`).
            Defaults to separable conv 3x3 and 5x5, avg and max pool 3x3 and
            identity.
        learning_rate: Adam learning rate of the compiled models. Defaults to 1e-3.
        dropout: Dropout rate before the classifier. Defaults to 0.
        name: The space's name.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "num_blocks": Flag("num_blocks", type=int, lower_bound=1, help="Blocks per cell"),
        "num_cells": Flag("num_cells", type=int, lower_bound=1, help="Cells per stage"),
        "num_reductions": Flag(
            "num_reductions",
            type=int,
            lower_bound=0,
            help="Resolution reductions (stages - 1)",
        ),
        "filters": Flag("filters", type=int, lower_bound=1, help="Width of the first stage"),
        "stem_strides": Flag(
            "stem_strides",
            type=int,
            lower_bound=1,
            upper_bound=2,
            help="Stem strides: 1, or 2 to halve the resolution before the cells",
        ),
        "ops": Flag(
            "ops",
            type=list,
            check=ops_module.check_ops,
            help=f"Comma-separated cell ops to choose from, among {', '.join(ops_module.OPS)}",
        ),
        "learning_rate": Flag(
            "learning_rate", type=float, check=positive, help="Adam learning rate of the models"
        ),
    }

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        num_blocks: int = 5,
        num_cells: int = 2,
        num_reductions: int = 2,
        filters: int = 32,
        stem_strides: int = 1,
        ops: Sequence[str] = DEFAULT_OPS,
        learning_rate: float = 1e-3,
        dropout: float = 0.0,
        name: str = "nasnet",
    ):
        for arg, value, low in (
            ("num_blocks", num_blocks, 1),
            ("num_cells", num_cells, 1),
            ("num_reductions", num_reductions, 0),
            ("filters", filters, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{arg} must be an integer >= {low}. Received: {arg}={value!r}.")
        if stem_strides not in (1, 2):
            raise ValueError(f"stem_strides must be 1 or 2. Received: {stem_strides!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout}.")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}.")
        self.num_blocks = num_blocks
        self.num_cells = num_cells
        self.num_reductions = num_reductions
        self.filters = filters
        self.stem_strides = stem_strides
        self.ops = ops_module.check_ops(ops)
        self.learning_rate = float(learning_rate)
        self.dropout = float(dropout)
        self._decisions = tuple(
            Decision(f"{cell}/block_{b}/{field}", choices)
            for cell in CELL_NAMES
            for b in range(num_blocks)
            for field, choices in (
                ("input_a", tuple(range(2 + b))),
                ("op_a", self.ops),
                ("input_b", tuple(range(2 + b))),
                ("op_b", self.ops),
            )
        )
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "num_cells": self.num_cells,
            "num_reductions": self.num_reductions,
            "filters": self.filters,
            "stem_strides": self.stem_strides,
            "ops": list(self.ops),
            "learning_rate": self.learning_rate,
            "dropout": self.dropout,
        }

    # -- Decisions <-> architecture ----------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        return Architecture(cells={c: self._decode_cell(c, values) for c in CELL_NAMES})

    def _decode_cell(self, cell: str, values: Mapping[str, Scalar]) -> Cell:
        n = 2 + 3 * self.num_blocks + 1
        matrix = [[0] * n for _ in range(n)]
        labels = list(CELL_INPUTS)
        used = set()

        def vertex_of(index: int) -> int:
            return index if index < 2 else 4 + 3 * (index - 2)

        for b in range(self.num_blocks):
            prefix = f"{cell}/block_{b}/"
            op_a, op_b, add = 2 + 3 * b, 3 + 3 * b, 4 + 3 * b
            for op_vertex, field in ((op_a, "a"), (op_b, "b")):
                source = int(values[prefix + f"input_{field}"])
                matrix[vertex_of(source)][op_vertex] = 1
                used.add(source)
                labels.append(str(values[prefix + f"op_{field}"]))
                matrix[op_vertex][add] = 1
            labels.append("add")
        labels.append("output")
        for b in range(self.num_blocks):
            if 2 + b not in used:
                matrix[vertex_of(2 + b)][n - 1] = 1
        return Cell(matrix, labels)

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        if set(arch.cells) != set(CELL_NAMES) or arch.choices:
            raise OutOfSpaceError(
                f"A NASNetSpace architecture has exactly the cells {list(CELL_NAMES)} "
                f"and no choices. Received: {arch!r}."
            )
        values: dict[str, Scalar] = {}
        for name, cell in arch.cells.items():
            values.update(self._encode_cell(name, cell))
        self.check_values(values)
        return values

    def _encode_cell(self, name: str, cell: Cell) -> dict[str, Scalar]:
        ops = cell.ops

        def fail(why: str):
            raise OutOfSpaceError(f"The {name} cell is not a NASNet cell: {why}.")

        index = {}
        for v, label in enumerate(ops):
            if label in CELL_INPUTS:
                index[v] = CELL_INPUTS.index(label)
        adds = [v for v in cell.topological_order() if ops[v] == "add"]
        if len(adds) != self.num_blocks:
            fail(f"it has {len(adds)} blocks, the space has {self.num_blocks}")
        values: dict[str, Scalar] = {}
        for b, add in enumerate(adds):
            branches = sorted(cell.predecessors(add))
            if len(branches) != 2:
                fail(f"block {b} adds {len(branches)} branches instead of 2")
            for branch, field in zip(branches, "ab", strict=True):
                sources = cell.predecessors(branch)
                if len(sources) != 1 or sources[0] not in index:
                    fail(f"block {b} has a branch that does not start at an input or earlier block")
                if ops[branch] not in self.ops:
                    fail(f"op {ops[branch]!r} is not in the space's ops {list(self.ops)}")
                values[f"{name}/block_{b}/input_{field}"] = index[sources[0]]
                values[f"{name}/block_{b}/op_{field}"] = ops[branch]
            index[add] = 2 + b
        return values

    def encode_paths(self, arch: Architecture) -> np.ndarray:
        """The path encoding of both cells (`kerasnas.spaces.encoding`; used by BANANAS).

        One 0/1 feature per (cell, cell input, sequence of ops) path to the
        output, paths of up to `num_blocks` ops, truncated to the longest
        length that fits `MAX_PATH_FEATURES` (3 with the 5 default ops).
        """
        self.encode(arch)  # Validates that the architecture belongs to the space.
        encoder = PathEncoder(CELL_NAMES, CELL_INPUTS, self.ops, self.num_blocks)
        return encoder.encode(arch.cells)

    # -- Building -------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        self.encode(arch)  # Validates that the architecture belongs to the space.
        inputs = keras.Input(shape=self.input_shape, name="input")
        x = layers.Conv2D(
            self.filters, 3, self.stem_strides, padding="same", use_bias=False, name="stem_conv"
        )(inputs)
        x = ops_module.batch_norm("stem_bn")(x)
        prev_prev, prev = x, x
        filters = self.filters
        cells = arch.cells
        index = 0
        for stage in range(self.num_reductions + 1):
            for _ in range(self.num_cells):
                out = _build_cell(
                    cells["normal"], prev, prev_prev, filters, False, f"cell{index}_normal"
                )
                prev_prev, prev, index = prev, out, index + 1
            if stage < self.num_reductions:
                filters *= 2
                out = _build_cell(
                    cells["reduction"], prev, prev_prev, filters, True, f"cell{index}_reduction"
                )
                prev_prev, prev, index = prev, out, index + 1
        x = layers.ReLU(name="head_relu")(prev)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        if self.dropout:
            x = layers.Dropout(self.dropout, name="dropout")(x)
        outputs = classifier_head(x, self.num_classes)
        model = keras.Model(inputs, outputs, name=f"{self.name}_{arch.hash()[:8]}")
        return self.compile_model(model)


def _build_cell(cell: Cell, prev, prev_prev, filters: int, reduction: bool, name: str):
    """Builds one cell on its two inputs; returns the cell's output tensor.

    Layers are named `{name}_in0_*`, `{name}_in1_*` (input calibration),
    `{name}_v{vertex}_*` (the op or add of a cell vertex) and `{name}_out`.
    """
    # Calibrate both inputs to `filters` channels and the same resolution.
    strides = 2 if prev_prev.shape[1] != prev.shape[1] else 1
    prev_prev = ops_module.relu_conv_bn(prev_prev, filters, 1, strides, name=f"{name}_in1")
    prev = ops_module.relu_conv_bn(prev, filters, 1, name=f"{name}_in0")
    tensors = {}
    for v in cell.topological_order():
        label = cell.ops[v]
        preds = cell.predecessors(v)
        if label in CELL_INPUTS:
            tensors[v] = prev if label == CELL_INPUTS[0] else prev_prev
        elif label == "add":
            tensors[v] = layers.Add(name=f"{name}_v{v}_add")([tensors[u] for u in preds])
        elif label == "output":
            outs = [tensors[u] for u in preds]
            tensors[v] = outs[0] if len(outs) == 1 else layers.Concatenate(name=f"{name}_out")(outs)
        else:
            (source,) = preds
            strides = 2 if reduction and cell.ops[source] in CELL_INPUTS else 1
            tensors[v] = ops_module.apply(
                label, tensors[source], filters, strides, name=f"{name}_v{v}"
            )
    return tensors[cell.ops.index("output")]
