"""The path encoding of cells (White, Neiswanger & Savani, "BANANAS", AAAI 2021).

A cell is described by the set of its input-to-output paths, each path the
sequence of operations it goes through (`add` vertices, which only sum,
are skipped). The encoding is a 0/1 vector with one feature per possible
path: per cell, per cell input, per length 0..`max_length`, per sequence of
ops. Paths longer than `max_length` are left out (the paper's truncation:
long paths are rare and carry little information). Isomorphic cells have
the same paths, so the encoding is isomorphism-invariant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kerasnas.architecture import Cell

#: The most features a path encoding gets by default: `max_length` is the longest
#: path length whose encoding stays within it.
MAX_PATH_FEATURES = 1024
#: Vertex labels that no path records (they only join branches).
SKIPPED_LABELS = ("add",)


class PathEncoder:
    """Turns the named cells of an architecture into one fixed-length path vector.

    Args:
        cells: The cell names, in the order their features are laid out.
        inputs: Labels of the cells' input vertices (e.g. `("input_0", "input_1")`).
        ops: The operation labels a path can go through.
        longest: The most operations on a path of these cells.
        max_features: The length limit that fixes `max_length` (the longest
            path kept): the largest length, at most `longest`, whose encoding
            fits. Defaults to `MAX_PATH_FEATURES`.
    """

    def __init__(
        self,
        cells: Sequence[str],
        inputs: Sequence[str],
        ops: Sequence[str],
        longest: int,
        max_features: int = MAX_PATH_FEATURES,
    ):
        self.cells = tuple(cells)
        self.inputs = tuple(inputs)
        self.ops = tuple(ops)
        self._op_index = {op: i for i, op in enumerate(self.ops)}
        length = 0
        while length < longest and self._size(length + 1) <= max_features:
            length += 1
        self.max_length = length
        # Offsets of each path length within one (cell, input) block.
        self._offsets = [sum(len(self.ops) ** j for j in range(k)) for k in range(length + 2)]
        self._block = self._offsets[-1]
        self.size = self._size(length)

    def _size(self, length: int) -> int:
        per_input = sum(len(self.ops) ** j for j in range(length + 1))
        return len(self.cells) * len(self.inputs) * per_input

    def encode(self, cells: Mapping[str, Cell]) -> np.ndarray:
        """The path vector (float32, 0/1) of `cells`, a mapping name -> `Cell`."""
        out = np.zeros(self.size, dtype=np.float32)
        for c, name in enumerate(self.cells):
            for source, path in cell_paths(cells[name]):
                if len(path) > self.max_length or source not in self.inputs:
                    continue
                index = 0
                for op in path:
                    index = index * len(self.ops) + self._op_index[op]
                block = c * len(self.inputs) + self.inputs.index(source)
                out[block * self._block + self._offsets[len(path)] + index] = 1.0
        return out


def cell_paths(cell: Cell) -> list[tuple[str, tuple[str, ...]]]:
    """Every path from an input vertex to the output: `(input label, op labels)`."""
    ops = cell.ops
    output = ops.index("output")
    successors = [cell.successors(v) for v in range(len(ops))]
    found: list[tuple[str, tuple[str, ...]]] = []

    def walk(v: int, source: str, path: tuple[str, ...]) -> None:
        for w in successors[v]:
            if w == output:
                found.append((source, path))
            elif ops[w] in SKIPPED_LABELS:
                walk(w, source, path)
            else:
                walk(w, source, (*path, ops[w]))

    for v, label in enumerate(ops):
        if label.startswith("input"):
            walk(v, label, ())
    return found
