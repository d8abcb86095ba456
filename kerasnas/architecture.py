"""The `Architecture` value: what a search proposes, trains and ranks.

An architecture is a small immutable description of one network: zero or more
*cells* (labelled directed acyclic graphs of operations) plus *choices*
(global scalar decisions such as depth or width). It never builds a Keras
model itself; a search space turns it into one.

Two architectures whose cells are isomorphic (the same graph with its vertices
numbered differently) have the same `hash()` and compare equal. The hash
follows NAS-Bench-101's graph fingerprint: every vertex starts from a hash of
(out-degree, in-degree, label) and is re-hashed with its sorted in- and
out-neighbour hashes, once per vertex; the graph's hash is the hash of the
sorted vertex hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from kerasnas import _plot
from kerasnas._plot import INPUT_PREFIX, OUTPUT
from kerasnas.errors import OutOfSpaceError  # noqa: F401 - also importable from here.

Scalar = bool | int | float | str


def graph_hash(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> str:
    """Isomorphism-invariant fingerprint of a vertex-labelled directed graph.

    The algorithm is NAS-Bench-101's `graph_util.hash_module`: iterated
    hashing of each vertex's degrees and label with its neighbours' hashes.
    Labels may be any values whose `str()` is stable (strings, ints).

    Args:
        matrix: Square 0/1 adjacency matrix; `matrix[i][j] == 1` is an edge
            from vertex i to vertex j.
        labels: One label per vertex.

    Returns:
        A 32-character hex string.
    """
    n = len(matrix)
    # numpy scalars print as np.int64(1) under numpy 2: use plain Python values.
    labels = [label.item() if hasattr(label, "item") else label for label in labels]
    if len(labels) != n:
        raise ValueError(
            f"graph_hash needs one label per vertex. Received: {n} vertices "
            f"and {len(labels)} labels."
        )
    in_degree = [sum(int(matrix[i][j]) for i in range(n)) for j in range(n)]
    out_degree = [sum(int(v) for v in matrix[i]) for i in range(n)]
    hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[w] for w in range(n) if matrix[w][v]))
                + "|"
                + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def topological_order(matrix: Sequence[Sequence[int]]) -> list[int]:
    """Vertices of a DAG in topological order (ties broken by index).

    Raises:
        ValueError: if the graph has a cycle.
    """
    n = len(matrix)
    in_degree = [sum(int(matrix[i][j]) for i in range(n)) for j in range(n)]
    ready = [v for v in range(n) if in_degree[v] == 0]
    order = []
    while ready:
        v = min(ready)
        ready.remove(v)
        order.append(v)
        for w in range(n):
            if matrix[v][w]:
                in_degree[w] -= 1
                if in_degree[w] == 0:
                    ready.append(w)
    if len(order) != n:
        raise ValueError("The cell's graph has a cycle; a cell must be a DAG.")
    return order


class Cell:
    """A cell: a labelled DAG of operations with input vertices and one output.

    Vertices whose label starts with `"input"` are the cell's inputs (they are
    always kept, and told apart by their labels, e.g. `"input_0"` for the
    previous cell's output and `"input_1"` for the one before). Exactly one
    vertex is labelled `"output"`. Every other vertex is an operation; a
    vertex that cannot reach the output, or cannot be reached from an input,
    computes nothing useful and is dropped on construction. When no input
    reaches the output at all, only the inputs and the output remain, with no
    edges, and `is_connected` is False (spaces that cannot hold such a cell
    raise `OutOfSpaceError`).

    Args:
        matrix: Square 0/1 adjacency matrix (list of lists); `matrix[i][j]`
            is an edge from vertex i to vertex j. Must be acyclic.
        ops: One label per vertex.
    """

    __slots__ = ("_matrix", "_ops", "_hash")

    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str]):
        matrix = [[int(v) for v in row] for row in matrix]
        ops = [str(op) for op in ops]
        n = len(matrix)
        if any(len(row) != n for row in matrix):
            raise ValueError(
                "A cell's matrix must be square. Received rows of lengths "
                f"{[len(row) for row in matrix]}."
            )
        if len(ops) != n:
            raise ValueError(
                f"A cell needs one op per vertex. Received: {n} vertices and ops={ops}."
            )
        if any(v not in (0, 1) for row in matrix for v in row):
            raise ValueError("A cell's matrix must hold only 0 and 1.")
        if any(matrix[v][v] for v in range(n)):
            raise ValueError("A cell's matrix has a self-loop; a cell is a DAG.")
        if ops.count(OUTPUT) != 1:
            raise ValueError(
                f"A cell needs exactly one vertex labelled {OUTPUT!r}. Received: ops={ops}."
            )
        if not any(op.startswith(INPUT_PREFIX) for op in ops):
            raise ValueError(
                f"A cell needs at least one input vertex (label starting with "
                f"{INPUT_PREFIX!r}). Received: ops={ops}."
            )
        topological_order(matrix)  # Raises on cycles.
        matrix, ops = _prune(matrix, ops)
        self._matrix = tuple(tuple(row) for row in matrix)
        self._ops = tuple(ops)
        self._hash = graph_hash(self._matrix, self._ops)

    @property
    def matrix(self) -> tuple[tuple[int, ...], ...]:
        return self._matrix

    @property
    def ops(self) -> tuple[str, ...]:
        return self._ops

    @property
    def is_connected(self) -> bool:
        """Whether some input reaches the output."""
        return any(any(row) for row in self._matrix)

    @property
    def num_vertices(self) -> int:
        return len(self._ops)

    def predecessors(self, v: int) -> list[int]:
        return [u for u in range(len(self._ops)) if self._matrix[u][v]]

    def successors(self, v: int) -> list[int]:
        return [w for w in range(len(self._ops)) if self._matrix[v][w]]

    def topological_order(self) -> list[int]:
        return topological_order(self._matrix)

    def hash(self) -> str:
        return self._hash

    def to_config(self) -> dict:
        return {"matrix": [list(row) for row in self._matrix], "ops": list(self._ops)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and other._hash == self._hash

    def __hash__(self) -> int:
        return hash(self._hash)

    def __repr__(self) -> str:
        return f"Cell(ops={list(self._ops)}, hash={self._hash[:8]})"


def _prune(matrix: list[list[int]], ops: list[str]) -> tuple[list, list]:
    """Drops operation vertices off every input-to-output path."""
    n = len(ops)
    inputs = [v for v in range(n) if ops[v].startswith(INPUT_PREFIX)]
    output = ops.index(OUTPUT)

    def reach(starts, forward):
        seen, stack = set(starts), list(starts)
        while stack:
            v = stack.pop()
            for w in range(n):
                edge = matrix[v][w] if forward else matrix[w][v]
                if edge and w not in seen:
                    seen.add(w)
                    stack.append(w)
        return seen

    useful = reach(inputs, True) & reach([output], False)
    if output not in useful:
        # Nothing reaches the output: the cell computes a constant zero. Keep
        # only its inputs and output, unconnected (`Cell.is_connected` is False).
        useful = {output}
    keep = [v for v in range(n) if v in useful or v in inputs]
    return [[matrix[i][j] for j in keep] for i in keep], [ops[v] for v in keep]


class Architecture:
    """An immutable description of one network, with a canonical hash.

    Args:
        cells: Mapping from a cell name (e.g. `"normal"`, `"reduction"`) to a
            `Cell` or to its config `{"matrix": [[...]], "ops": [...]}`.
        choices: Mapping from a global decision name to a scalar value
            (bool, int, float or str).

    Two architectures are equal when their hashes are equal, that is when
    their cells are isomorphic and their choices are the same.
    """

    __slots__ = ("_cells", "_choices", "_hash")

    def __init__(
        self,
        cells: Mapping[str, Cell | Mapping[str, Any]] | None = None,
        choices: Mapping[str, Scalar] | None = None,
    ):
        built = {}
        for name, cell in sorted((cells or {}).items()):
            if not isinstance(cell, Cell):
                if not isinstance(cell, Mapping) or set(cell) != {"matrix", "ops"}:
                    raise ValueError(
                        f"Cell {name!r} must be a Cell or a dict with keys "
                        f"'matrix' and 'ops'. Received: {cell!r}."
                    )
                cell = Cell(cell["matrix"], cell["ops"])
            built[str(name)] = cell
        clean_choices = {}
        for name, value in sorted((choices or {}).items()):
            if not isinstance(value, (bool, int, float, str)):
                raise ValueError(
                    f"Choice {name!r} must be a bool, int, float or str. "
                    f"Received: {value!r} of type {type(value).__name__}."
                )
            clean_choices[str(name)] = value
        if not built and not clean_choices:
            raise ValueError("An architecture needs at least one cell or choice.")
        self._cells = built
        self._choices = clean_choices
        self._hash = _md5(
            json.dumps(
                {
                    "cells": {name: c.hash() for name, c in built.items()},
                    "choices": clean_choices,
                },
                sort_keys=True,
            )
        )

    @property
    def cells(self) -> dict[str, Cell]:
        return dict(self._cells)

    @property
    def choices(self) -> dict[str, Scalar]:
        return dict(self._choices)

    def hash(self) -> str:
        """The canonical hash, a 32-character hex string."""
        return self._hash

    def to_config(self) -> dict:
        return {
            "cells": {name: c.to_config() for name, c in self._cells.items()},
            "choices": dict(self._choices),
        }

    def to_json(self) -> str:
        """Serializes to JSON; `Architecture.from_json` reads it back exactly."""
        return json.dumps(self.to_config(), sort_keys=True)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Architecture:
        unknown = set(config) - {"cells", "choices"}
        if unknown:
            raise ValueError(
                f"Unknown keys in an architecture config: {sorted(unknown)}. "
                "Expected 'cells' and 'choices'."
            )
        return cls(cells=config.get("cells"), choices=config.get("choices"))

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Not an architecture JSON string: {e}") from e
        if not isinstance(config, dict):
            raise ValueError(f"An architecture JSON must hold an object. Received: {text[:80]!r}")
        return cls.from_config(config)

    def plot(self, path: str | os.PathLike) -> str:
        """Draws the cells (and lists the choices) to a PNG, SVG or PDF file.

        Uses graphviz (through pydot) when the `dot` program is installed and
        matplotlib otherwise.

        Args:
            path: Output file; its extension picks the format.

        Returns:
            The path written.
        """
        path = os.fspath(path)
        fmt = os.path.splitext(path)[1].lower().lstrip(".")
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(
                f"arch.plot() writes .png, .svg or .pdf files. Received: path={path!r}."
            )
        if shutil.which("dot"):
            _plot.plot_with_graphviz(self, path, fmt)
        else:
            _plot.plot_with_matplotlib(self, path)
        return path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and other._hash == self._hash

    def __hash__(self) -> int:
        return hash(self._hash)

    def __repr__(self) -> str:
        parts = [f"{n}:{len(c.ops)} vertices" for n, c in self._cells.items()]
        parts += [f"{k}={v!r}" for k, v in self._choices.items()]
        return f"Architecture({', '.join(parts)}, hash={self._hash[:8]})"
