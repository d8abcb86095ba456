"""The supernet of the ENAS recurrent cell space: every node may read every earlier node.

As in ENAS (Pham et al., ICML 2018), node j of the shared cell holds one weight
matrix per earlier node i it may read, and a sampled cell uses the matrices of
the inputs it picked; activations have no weights. The slots are the nodes:
node 1's candidates are its 4 activations, node j's the `(input, activation)`
pairs. A path's new state averages its loose ends (the nodes no later node
reads); with mixed weights (DARTS) a node counts as loose by one minus the
weight of the candidates that read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from kerasnas.architecture import Scalar
from kerasnas.oneshot.supernet import Slot, Supernet, check_space
from kerasnas.spaces.rnn import ACTIVATION_FNS, ACTIVATIONS, RNNCellSpace


class _SharedCell(layers.Layer):
    """One recurrent layer of the supernet: node 1's weights and `W[j][i]` for every i < j."""

    def __init__(self, units: int, num_nodes: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.num_nodes = num_nodes

    def build(self, input_shape: Any) -> None:
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        two = 2 * self.units
        self.w_x = self.add_weight(shape=(input_shape[-1], two), initializer=init, name="w_x")
        self.w_h = self.add_weight(shape=(self.units, two), initializer=init, name="w_h")
        self.w = {
            (j, i): self.add_weight(shape=(self.units, two), initializer=init, name=f"w_{j}_{i}")
            for j in range(2, self.num_nodes + 1)
            for i in range(1, j)
        }

    def _highways(self, mixed: Any, previous: Any, weights: Any) -> Any:
        """Σ_a weights[a] * highway with activation a (weights: one per `ACTIVATIONS`)."""
        gate = ops.sigmoid(mixed[:, : self.units])
        candidate = mixed[:, self.units :]
        total = 0.0
        for a, name in enumerate(ACTIVATIONS):
            total = total + weights[a] * ACTIVATION_FNS[name](candidate)
        return gate * total + (1 - gate) * previous * ops.sum(weights)

    def step(self, x_t: Any, h: Any, weights: Any, active: Any) -> Any:
        acts = len(ACTIVATIONS)
        mixed = ops.matmul(x_t, self.w_x) + ops.matmul(h, self.w_h)
        nodes = [self._highways(mixed, h, weights[0, :acts])]
        for j in range(2, self.num_nodes + 1):
            total = ops.zeros_like(h)
            for i in range(1, j):
                w = weights[j - 1, (i - 1) * acts : i * acts]
                on = ops.sum(active[j - 1, (i - 1) * acts : i * acts]) > 0
                source, kernel = nodes[i - 1], self.w[(j, i)]

                def run(source=source, kernel=kernel, w=w):
                    return self._highways(ops.matmul(source, kernel), source, w)

                total = total + ops.cond(on, run, lambda: ops.zeros_like(h))
            nodes.append(total)
        # Node i is loose unless a later node reads it (its read weight, clipped to 1).
        loose = []
        for i in range(1, self.num_nodes + 1):
            read = sum(
                ops.sum(weights[j - 1, (i - 1) * acts : i * acts])
                for j in range(i + 1, self.num_nodes + 1)
            )
            loose.append(ops.relu(1.0 - ops.minimum(read, 1.0)) if i < self.num_nodes else 1.0)
        total_loose = sum(loose)
        return sum(w * n for w, n in zip(loose, nodes, strict=True)) / total_loose

    def call(self, x: Any, weights: Any, active: Any) -> Any:
        """The states of every step, `(batch, steps, units)`, from a zero state."""
        h0 = ops.zeros((ops.shape(x)[0], self.units), dtype=x.dtype)

        def step(h, x_t):
            h = self.step(x_t, h, weights, active)
            return h, h

        _, states = ops.scan(step, h0, ops.transpose(x, (1, 0, 2)))
        return ops.transpose(states, (1, 0, 2))


class RNNSupernet(Supernet):
    """Every ENAS recurrent cell of an `RNNCellSpace` in one model (ENAS's shared cell).

    The skeleton is the space's (embedding for tokens, rows for images,
    `num_layers` recurrent layers, dropout, classifier); each layer's cell
    holds node 1's weights and, for each node j, one weight matrix per earlier
    node. It returns logits; for token sequences, one row per step
    (`(batch * steps, vocabulary)`), matching the labels flattened as the
    one-shot trainer flattens them.

    Args:
        space: A configured `RNNCellSpace`.
    """

    def __init__(self, space: RNNCellSpace, **kwargs: Any):
        check_space(space, RNNCellSpace, "RNNSupernet")
        super().__init__(name=kwargs.pop("name", "rnn_supernet"), **kwargs)
        self.space = space
        slots = [Slot("node_1", ("node_1/activation",), tuple((a,) for a in ACTIVATIONS))]
        for j in range(2, space.num_nodes + 1):
            pairs = tuple((i, a) for i in range(1, j) for a in ACTIVATIONS)
            slots.append(Slot(f"node_{j}", (f"node_{j}/input", f"node_{j}/activation"), pairs))
        self.slots = tuple(slots)
        units = space.units
        self.embedding = layers.Embedding(space.num_classes, units) if space.tokens else None
        self.cells = [
            _SharedCell(units, space.num_nodes, name=f"shared_cell_{layer}")
            for layer in range(space.num_layers)
        ]
        self.dropout = layers.Dropout(space.dropout)
        self.classifier = layers.Dense(space.num_classes)
        self.build_all()

    def call(self, x, weights, active, training: bool = False, calibrate: bool = False):
        if self.embedding is not None:
            x = self.embedding(ops.cast(x, "int32"))
        elif len(x.shape) == 4:  # Images, read row by row.
            x = ops.reshape(x, (-1, x.shape[1], x.shape[2] * x.shape[3]))
        for cell in self.cells:
            x = self.dropout(cell(x, weights, active), training=training)
        if self.embedding is None:
            return self.classifier(x[:, -1])
        return ops.reshape(self.classifier(x), (-1, self.space.num_classes))

    def candidate_kernels(self) -> list[list[list[Any]]]:
        found: list[list[list[Any]]] = [[[] for _ in slot.candidates] for slot in self.slots]
        for s, slot in enumerate(self.slots[1:], start=1):
            j = s + 1
            for k, (i, _) in enumerate(slot.candidates):
                found[s][k] = [cell.w[(j, i)] for cell in self.cells]
        return found

    def export_path(self, values: Mapping[str, Scalar]) -> keras.Model:
        """The space's model of `values`, with the supernet's weights."""
        self.indices(values)  # Checks that the values are a path of this supernet.
        model = self.space.build_model(self.space.decode(values))
        if self.embedding is not None:
            model.get_layer("embedding").set_weights(self.embedding.get_weights())
        for layer, shared in enumerate(self.cells):
            cell = model.get_layer(f"rnn_{layer}").cell
            cell.w_x.assign(shared.w_x)
            cell.w_h.assign(shared.w_h)
            for j, weight in enumerate(cell.w_nodes, start=2):
                weight.assign(shared.w[(j, int(values[f"node_{j}/input"]))])
        model.get_layer("classifier").set_weights(self.classifier.get_weights())
        return model
