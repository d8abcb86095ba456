"""Architecture descriptors of morphed models and Auto-Keras's edit distance.

A `Descriptor` summarises a network the way Auto-Keras's kernel sees it
(Jin, Song & Hu, "Auto-Keras", KDD 2019, section 4.1): the sequence of its
main layers (convolutions, dense layers, poolings), each with its kind, width
and kernel size, in topological order, and its skip connections, each as
(from layer, to layer, add or concat). `distance(a, b)` is the sum of

* the layer-sequence edit distance: inserting or deleting a layer costs 1,
  replacing one by another costs 1 between kinds and
  `|w_a - w_b| / max(w_a, w_b)` (plus 0.5 for another kernel size) within a
  kind; and
* the skip-connection distance: the minimum-cost matching (Hungarian
  algorithm) of the two sets of skips, where matching two skips costs the
  difference of their start positions and of their lengths, relative to the
  longer network, plus 1 when one adds and the other concatenates, and a
  skip left unmatched costs 1.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import keras
import numpy as np
from scipy import optimize

from kerasnas.morph.graph import Graph

L = keras.layers
_MAIN = {
    L.Conv2D: "conv",
    L.SeparableConv2D: "sepconv",
    L.DepthwiseConv2D: "dwconv",
    L.Dense: "dense",
    L.MaxPooling2D: "maxpool",
    L.AveragePooling2D: "avgpool",
}
# The zero 1x1 convolutions and the poolings that `skip` ops add belong to the skip.
_SKIP_LAYER = re.compile(r"skip\d+_(proj|pool)")
_KIND_CODES = {kind: code for code, kind in enumerate(sorted(set(_MAIN.values())))}


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """The main layers and skip connections of a network.

    Args:
        layers: `(kind, width, kernel)` of each main layer in topological
            order; kinds are `conv`, `sepconv`, `dwconv`, `dense`, `maxpool`,
            `avgpool`.
        skips: `(i, j, merge)`: main layer i feeds main layer j, and i is
            not j's immediate predecessor in the order (that edge is the
            chain itself); merge is `"add"`, `"concat"` or `"direct"`.
    """

    layers: tuple[tuple[str, int, int], ...]
    skips: tuple[tuple[int, int, str], ...]

    @property
    def num_layers(self) -> int:
        """How many weighted layers (convolutions and dense layers)."""
        return sum(kind not in ("maxpool", "avgpool") for kind, _, _ in self.layers)

    def to_config(self) -> dict[str, Any]:
        return {"layers": [list(x) for x in self.layers], "skips": [list(s) for s in self.skips]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Descriptor:
        return cls(
            tuple((str(k), int(w), int(s)) for k, w, s in config["layers"]),
            tuple((int(i), int(j), str(m)) for i, j, m in config["skips"]),
        )


def describe(graph: Graph) -> Descriptor:
    """The descriptor of a morph `Graph` (see `kerasnas.morph.graph.from_model`)."""
    order = graph.order()
    main = [n for n in order if graph[n].layer_cls in _MAIN and not _SKIP_LAYER.fullmatch(n)]
    index = {name: i for i, name in enumerate(main)}
    layers = []
    for name in main:
        node = graph[name]
        config = node.config
        size = config.get("kernel_size") or config.get("pool_size") or (1,)
        layers.append((_MAIN[node.layer_cls], int(node.shape[-1]), int(np.max(size))))
    # For every node, the main layers that reach it through non-main layers, with
    # the strongest merge on the way (concat > add > direct).
    rank = {"direct": 0, "add": 1, "concat": 2}
    reach: dict[str, dict[int, str]] = {}
    skips: set[tuple[int, int, str]] = set()
    for name in order:
        node = graph[name]
        merge = None
        if node.layer_cls is L.Add:
            merge = "add"
        elif node.layer_cls is L.Concatenate:
            merge = "concat"
        incoming: dict[int, str] = {}
        for parent in node.inputs:
            for source, how in reach.get(parent, {}).items():
                if merge is not None and rank[merge] > rank[how]:
                    how = merge
                if rank[how] >= rank[incoming.get(source, "direct")]:
                    incoming[source] = how
        if name in index:
            j = index[name]
            for i, how in incoming.items():
                if i != j - 1:  # The edge from the previous layer is the chain itself.
                    skips.add((i, j, how))
            reach[name] = {j: "direct"}
        else:
            reach[name] = incoming
    return Descriptor(tuple(layers), tuple(sorted(skips)))


def _layer_arrays(d: Descriptor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not d.layers:
        empty = np.zeros(0)
        return empty, empty, empty
    kinds, widths, kernels = zip(*d.layers, strict=True)
    return (
        np.array([_KIND_CODES[k] for k in kinds]),
        np.array(widths, dtype=np.float64),
        np.array(kernels),
    )


def layer_distance(a: Descriptor, b: Descriptor) -> float:
    """The edit distance between the layer sequences of `a` and `b`."""
    ka, wa, sa = _layer_arrays(a)
    kb, wb, sb = _layer_arrays(b)
    n, m = len(ka), len(kb)
    if n == 0 or m == 0:
        return float(n + m)
    replace = np.abs(wa[:, None] - wb[None, :]) / np.maximum(
        np.maximum(wa[:, None], wb[None, :]), 1.0
    )
    replace = replace + 0.5 * (sa[:, None] != sb[None, :])
    replace = np.where(ka[:, None] != kb[None, :], 1.0, np.minimum(replace, 1.0))
    # Row by row: D[i, j] = min(D[i-1, j] + 1, D[i-1, j-1] + c[i, j], D[i, j-1] + 1);
    # the last term is a running minimum of D[i, k] + (j - k).
    steps = np.arange(m + 1, dtype=np.float64)
    row = steps.copy()
    for i in range(1, n + 1):
        best = np.empty(m + 1)
        best[0] = i
        best[1:] = np.minimum(row[1:] + 1.0, row[:-1] + replace[i - 1])
        row = np.minimum.accumulate(best - steps) + steps
    return float(row[-1])


def skip_distance(a: Descriptor, b: Descriptor) -> float:
    """The cost of the best matching between the skip connections of `a` and `b`."""
    if not a.skips or not b.skips:
        return float(len(a.skips) + len(b.skips))
    scale = float(max(len(a.layers), len(b.layers), 1))
    sa = np.array([(i, j - i) for i, j, _ in a.skips], dtype=np.float64)
    sb = np.array([(i, j - i) for i, j, _ in b.skips], dtype=np.float64)
    ma = np.array([m for _, _, m in a.skips])
    mb = np.array([m for _, _, m in b.skips])
    cost = np.abs(sa[:, None, :] - sb[None, :, :]).sum(-1) / scale
    cost = np.minimum(cost + (ma[:, None] != mb[None, :]), 2.0)
    rows, cols = optimize.linear_sum_assignment(cost)
    unmatched = len(a.skips) + len(b.skips) - 2 * len(rows)
    return float(cost[rows, cols].sum() + unmatched)


def distance(a: Descriptor, b: Descriptor) -> float:
    """Auto-Keras's edit distance between two networks (0 for equal ones)."""
    return layer_distance(a, b) + skip_distance(a, b)
