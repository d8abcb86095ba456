"""The ENAS recurrent cell space (Pham et al. 2018), for sequence data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from kerasnas.architecture import Architecture, Cell, Scalar
from kerasnas.errors import OutOfSpaceError
from kerasnas.spaces.base import Decision, SearchSpace, classifier_head

#: The activations a node chooses among, as in ENAS.
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
CELL_NAME = "rnn"
INPUT_LABEL = "input_0"  # The cell's input: x_t and h_{t-1}, read by node 1.
OUTPUT_LABEL = "output"


class RNNCellSpace(SearchSpace):
    """ENAS's recurrent cell (Pham, Guan, Zoph, Le & Dean, "Efficient Neural
    Architecture Search via Parameter Sharing", ICML 2018).

    A cell of `num_nodes` nodes computes one time step. Node 1 reads the input
    `x_t` and the previous state `h_{t-1}`; each later node j reads one earlier
    node i (a decision) through its own weights and applies an activation (a
    decision, among tanh, ReLU, sigmoid and identity). Every node is a
    highway unit, as in the paper:

    ```
    c_1 = sigmoid(x_t W_xc + h_{t-1} W_hc)
    h_1 = c_1 * f_1(x_t W_x + h_{t-1} W_h) + (1 - c_1) * h_{t-1}
    c_j = sigmoid(h_i W_c^(j))
    h_j = c_j * f_j(h_i W^(j)) + (1 - c_j) * h_i
    ```

    The new state `h_t` is the average of the loose ends, the nodes no other
    node reads. The cell is a `kerasnas.spaces.rnn.ENASCell` layer (a Keras 3
    RNN cell, serialisable: an exported model loads with
    `keras.models.load_model` after `import kerasnas`), run by `keras.layers.RNN`
    in `num_layers` stacked recurrent layers with dropout between them, and
    the last state feeds a softmax classifier.

    The examples are sequences of shape `(steps, features)`, or images of
    shape `(height, width, channels)`, which are read row by row (`height`
    steps of `width * channels` features), so every image dataset of kerasnas
    is also a sequence classification task. Integer tokens of shape `(steps,)`
    with labels of the same shape (`kn.data.load("text:PATH")`) are next-token
    prediction (language modelling): an embedding of `units` comes first,
    every step is classified, `num_classes` is the vocabulary, and the models
    also report `bits_per_character` (`BitsPerCharacter`; search on
    `"val_loss"`, or `keras_tuner.Objective("val_bits_per_character", "min")`).

    Decisions: `node_1/activation`, then for j = 2..num_nodes `node_j/input`
    (1..j-1) and `node_j/activation`. The architecture is one cell (`"rnn"`):
    a vertex per node labelled with its activation, the input vertex
    `input_0` feeding node 1 and the loose ends feeding `output`, so
    architectures whose nodes are numbered differently have the same hash.

    Args:
        num_classes: Number of classes; taken from the labels when None.
        input_shape: `(steps,)` of tokens, `(steps, features)` or
            `(height, width, channels)`; taken from the data when None.
        num_nodes: Nodes of the cell. Defaults to 8, the paper's; use fewer
            on a CPU.
        units: Size of the recurrent state. Defaults to 64.
        num_layers: Stacked recurrent layers. Defaults to 1.
        dropout: Dropout rate between recurrent layers and before the
            classifier. Defaults to 0.1.
        learning_rate: Adam learning rate of the compiled models.
        name: The space's name.
    """

    input_rank = None  # Sequences (rank 2) or images (rank 3): see check_input_shape.
    #: Network morphism (`kerasnas.morph`) does not transform recurrent cells.
    morphable = False
    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {"num_blocks": "num_nodes", "filters": "units", "learning_rate": "learning_rate"}

    def __init__(
        self,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        *,
        num_nodes: int = 8,
        units: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        name: str = "rnn_cell",
    ):
        for arg, value, low in (("num_nodes", num_nodes, 1), ("units", units, 1),
                                ("num_layers", num_layers, 1)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{arg} must be an integer >= {low}. Received: {value!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1). Received: {dropout!r}.")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0. Received: {learning_rate!r}.")
        self.num_nodes = num_nodes
        self.units = units
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.learning_rate = float(learning_rate)
        decisions = [Decision("node_1/activation", ACTIVATIONS)]
        for j in range(2, num_nodes + 1):
            decisions.append(Decision(f"node_{j}/input", tuple(range(1, j))))
            decisions.append(Decision(f"node_{j}/activation", ACTIVATIONS))
        self._decisions = tuple(decisions)
        super().__init__(num_classes=num_classes, input_shape=input_shape, name=name)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_nodes": self.num_nodes,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "learning_rate": self.learning_rate,
        }

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) not in (1, 2, 3):
            raise ValueError(
                "RNNCellSpace needs token sequences of shape (steps,), sequences of shape "
                "(steps, features), or images of shape (height, width, channels) that it "
                f"reads row by row. Received examples of shape {input_shape}."
            )

    def labels_per_step(self, input_shape: tuple[int, ...]) -> bool:
        """Token sequences `(steps,)` take a label per step (next-token prediction)."""
        return len(input_shape) == 1

    @property
    def tokens(self) -> bool:
        """Whether the examples are token sequences (next-token prediction)."""
        return self.input_shape is not None and len(self.input_shape) == 1

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("accuracy", "bits_per_character") if self.tokens else ("accuracy",)

    def compile_metrics(self) -> list[Any]:
        return ["accuracy", BitsPerCharacter()] if self.tokens else ["accuracy"]

    # -- Values <-> architectures ---------------------------------------------
    def decode(self, values: Mapping[str, Scalar]) -> Architecture:
        self.check_values(values)
        inputs, activations = _plan(values, self.num_nodes)
        return Architecture(cells={CELL_NAME: _cell(inputs, activations)})

    def encode(self, arch: Architecture) -> dict[str, Scalar]:
        if set(arch.cells) != {CELL_NAME} or arch.choices:
            raise OutOfSpaceError(
                f"An RNNCellSpace architecture has exactly one cell, named {CELL_NAME!r}, "
                f"and no choices. Received: {arch!r}."
            )
        values = _encode_cell(arch.cells[CELL_NAME], self.num_nodes)
        self.check_values(values)
        if self.decode(values).hash() != arch.hash():  # A safety net.
            raise OutOfSpaceError("The cell is not an ENAS recurrent cell of this space.")
        return values

    # -- Models -----------------------------------------------------------------
    def build_model(self, arch: Architecture) -> keras.Model:
        inputs_of, activations = _plan(self.encode(arch), self.num_nodes)

        def recurrent(layer: int, sequences: bool) -> layers.Layer:
            cell = ENASCell(self.units, inputs_of, activations, name=f"enas_cell_{layer}")
            return layers.RNN(cell, return_sequences=sequences, name=f"rnn_{layer}")

        return self._model(recurrent, self.units, f"{self.name}_{arch.hash()[:8]}")

    def baseline(self, kind: str, params: int | None = None) -> keras.Model:
        """The space's model with Keras's own `"lstm"` or `"gru"` layer instead of the cell.

        Input handling, depth, dropout, head, loss, metrics and optimizer are the
        space's, so a searched cell and the baseline train alike. The space needs
        its input shape and classes (given, or set by `Search.fit`).

        Args:
            kind: `"lstm"` (`keras.layers.LSTM`) or `"gru"` (`keras.layers.GRU`).
            params: The units are chosen so that the model has the weight
                count closest to this (e.g. a searched model's `count_params()`);
                None: the space's `units`.
        """
        recurrent_layers = {"lstm": layers.LSTM, "gru": layers.GRU}
        if kind not in recurrent_layers:
            raise ValueError(f"kind must be 'lstm' or 'gru'. Received: {kind!r}.")
        if self.input_shape is None or self.num_classes is None:
            raise ValueError(
                "The space has no input shape or classes yet: pass input_shape and "
                "num_classes to RNNCellSpace, or call Search.fit first."
            )

        def make(units: int) -> keras.Model:
            def recurrent(layer: int, sequences: bool) -> layers.Layer:
                return recurrent_layers[kind](
                    units, return_sequences=sequences, name=f"{kind}_{layer}"
                )

            return self._model(recurrent, units, f"{self.name}_{kind}")

        if params is None:
            return make(self.units)
        low, high = 1, 1
        while make(high).count_params() < params:  # Weights grow with the units.
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if make(middle).count_params() < params else (low, middle)
        closest = min((low, high), key=lambda u: abs(make(u).count_params() - params))
        return make(closest)

    def _model(self, recurrent: Any, units: int, name: str) -> keras.Model:
        """Input handling, `recurrent(layer, return_sequences)` layers, dropout, head."""
        tokens = self.tokens  # Next-token prediction: one output per step.
        inputs = keras.Input(shape=self.input_shape, dtype="int64" if tokens else None)
        x = inputs
        if tokens:
            x = layers.Embedding(self.num_classes, units, name="embedding")(x)
        elif len(self.input_shape) == 3:  # Images, read row by row.
            height, width, channels = self.input_shape
            x = layers.Reshape((height, width * channels), name="rows")(x)
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            x = recurrent(layer, tokens or not last)(x)
            if self.dropout:
                x = layers.Dropout(self.dropout)(x)
        outputs = classifier_head(x, self.num_classes)
        return self.compile_model(keras.Model(inputs, outputs, name=name))


def _plan(values: Mapping[str, Scalar], num_nodes: int) -> tuple[list[int], list[str]]:
    """Each node's input (0: the cell's input, else a node number) and activation."""
    inputs = [0] + [int(values[f"node_{j}/input"]) for j in range(2, num_nodes + 1)]
    activations = [str(values[f"node_{j}/activation"]) for j in range(1, num_nodes + 1)]
    return inputs, activations


def loose_ends(inputs: Sequence[int]) -> list[int]:
    """The nodes (numbered from 1) that no node reads: their average is the output."""
    read = set(inputs[1:])
    return [j for j in range(1, len(inputs) + 1) if j not in read]


def _cell(inputs: Sequence[int], activations: Sequence[str]) -> Cell:
    n = len(inputs)
    size = n + 2  # input_0, nodes 1..n, output
    matrix = [[0] * size for _ in range(size)]
    for j, source in enumerate(inputs, start=1):
        matrix[source][j] = 1
    for j in loose_ends(inputs):
        matrix[j][size - 1] = 1
    return Cell(matrix, [INPUT_LABEL, *activations, OUTPUT_LABEL])


def _encode_cell(cell: Cell, num_nodes: int) -> dict[str, Scalar]:
    """Decision values of a cell, its nodes numbered in a topological order."""
    matrix, ops = cell.matrix, cell.ops
    size = len(ops)
    if ops.count(INPUT_LABEL) != 1 or size != num_nodes + 2:
        raise OutOfSpaceError(
            f"An RNNCellSpace cell has the vertex {INPUT_LABEL!r}, {num_nodes} nodes and "
            f"{OUTPUT_LABEL!r}. Received ops {ops}."
        )
    source, sink = ops.index(INPUT_LABEL), ops.index(OUTPUT_LABEL)
    nodes = [v for v in range(size) if v not in (source, sink)]
    parents = {v: [u for u in range(size) if matrix[u][v]] for v in nodes}
    if any(len(p) != 1 or p[0] == sink for p in parents.values()) or any(
        ops[v] not in ACTIVATIONS for v in nodes
    ):
        raise OutOfSpaceError(
            "Each node of an ENAS recurrent cell reads exactly one earlier vertex and has "
            f"an activation among {list(ACTIVATIONS)}. Received ops {ops}."
        )
    number = {source: 0}
    order: list[int] = []
    while len(order) < len(nodes):
        ready = [v for v in nodes if v not in number and parents[v][0] in number]
        if not ready:
            raise OutOfSpaceError("The cell's nodes do not all descend from its input.")
        order.append(ready[0])
        number[ready[0]] = len(order)
    if [v for v in order if parents[v][0] == source] != order[:1]:
        raise OutOfSpaceError("Only node 1 of an ENAS recurrent cell reads the cell's input.")
    values: dict[str, Scalar] = {"node_1/activation": ops[order[0]]}
    for j, v in enumerate(order[1:], start=2):
        values[f"node_{j}/input"] = number[parents[v][0]]
        values[f"node_{j}/activation"] = ops[v]
    return values


#: Each activation's function (keras ops), by name.
ACTIVATION_FNS = {
    "tanh": keras.ops.tanh,
    "relu": keras.ops.relu,
    "sigmoid": keras.ops.sigmoid,
    "identity": lambda x: x,
}


@keras.saving.register_keras_serializable(package="kerasnas")
class ENASCell(layers.Layer):
    """One ENAS recurrent cell as a Keras RNN cell (use it in `keras.layers.RNN`).

    Args:
        units: Size of the state (and of the output).
        inputs: For each node (numbered from 1), what it reads: 0 for the cell's
            input (node 1 only), else an earlier node's number.
        activations: Each node's activation, among `ACTIVATIONS`.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self, units: int, inputs: Sequence[int], activations: Sequence[str], **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.node_inputs = [int(i) for i in inputs]
        self.activations = [str(a) for a in activations]
        if len(self.node_inputs) != len(self.activations) or not self.node_inputs:
            raise ValueError("ENASCell needs one input and one activation per node.")
        if self.node_inputs[0] != 0 or any(
            not 1 <= i < j for j, i in enumerate(self.node_inputs[1:], start=2)
        ):
            raise ValueError(
                "ENASCell: node 1 reads the cell's input (0) and node j an earlier node "
                f"1..j-1. Received inputs={self.node_inputs}."
            )
        unknown = sorted(set(self.activations) - set(ACTIVATIONS))
        if unknown:
            raise ValueError(f"ENASCell: unknown activation(s) {unknown}; use {ACTIVATIONS}.")
        self.state_size = self.units
        self.output_size = self.units
        self._loose = loose_ends(self.node_inputs)

    def build(self, input_shape: Any) -> None:
        features = input_shape[-1]
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        two = 2 * self.units  # Each weight gives the highway gate and the candidate.
        self.w_x = self.add_weight(shape=(features, two), initializer=init, name="w_x")
        self.w_h = self.add_weight(shape=(self.units, two), initializer=init, name="w_h")
        self.w_nodes = [
            self.add_weight(shape=(self.units, two), initializer=init, name=f"w_node_{j}")
            for j in range(2, len(self.node_inputs) + 1)
        ]
        super().build(input_shape)

    def _highway(self, mixed: Any, previous: Any, activation: str) -> Any:
        gate = keras.ops.sigmoid(mixed[:, : self.units])
        return gate * ACTIVATION_FNS[activation](mixed[:, self.units :]) + (1 - gate) * previous

    def call(self, inputs: Any, states: Any, training: Any = None) -> tuple[Any, list[Any]]:
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        mixed = keras.ops.matmul(inputs, self.w_x) + keras.ops.matmul(h_prev, self.w_h)
        nodes = [self._highway(mixed, h_prev, self.activations[0])]
        for j, weight in enumerate(self.w_nodes, start=2):
            source = nodes[self.node_inputs[j - 1] - 1]
            nodes.append(self._highway(keras.ops.matmul(source, weight), source,
                                       self.activations[j - 1]))  # fmt: skip
        out = keras.ops.mean(keras.ops.stack([nodes[j - 1] for j in self._loose]), axis=0)
        return out, [out]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "inputs": self.node_inputs,
            "activations": self.activations,
        }


@keras.saving.register_keras_serializable(package="kerasnas")
class BitsPerCharacter(keras.metrics.Mean):
    """Mean cross-entropy of next-token predictions in bits (nats / ln 2).

    Perplexity per character is `2 ** bits_per_character`.
    """

    def __init__(self, name: str = "bits_per_character", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return super().update_state(nats / math.log(2.0), sample_weight=sample_weight)
