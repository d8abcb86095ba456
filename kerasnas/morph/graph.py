"""A small editable picture of a functional Keras model: layers, wiring, weights.

Morphisms edit this picture (`Graph`) and turn it back into a new functional
model. Every layer of the picture is a built-in Keras layer given by its class
and config, called once, on one tensor or on a list of tensors; its output is
the tensor named like the layer. Weights travel as numpy arrays keyed by the
variables' short names (`"kernel"`, `"gamma"`, `"moving_mean"`, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np


@dataclasses.dataclass
class Node:
    """One layer call of the graph; its output tensor goes by the same name.

    Args:
        name: The layer's name, unique in the graph.
        layer_cls: The Keras layer class (`keras.layers.InputLayer` for inputs).
        config: The layer's config (`layer.get_config()`).
        inputs: Names of the nodes whose outputs the layer is called on.
        as_list: Whether the layer is called on a list of tensors (merges).
        weights: The layer's weights by short variable name, in layer order.
        shape: The output shape without the batch axis.
    """

    name: str
    layer_cls: type
    config: dict[str, Any]
    inputs: list[str]
    as_list: bool
    weights: dict[str, np.ndarray]
    shape: tuple[int | None, ...]

    @property
    def kind(self) -> str:
        return self.layer_cls.__name__

    @property
    def channels(self) -> int:
        return int(self.shape[-1])

    def is_a(self, *classes: type) -> bool:
        return issubclass(self.layer_cls, classes)


class Graph:
    """An editable functional model: nodes by name, model inputs and outputs.

    Args:
        nodes: The nodes, in a topological order.
        inputs: Names of the input nodes, in the model's order.
        outputs: Names of the output nodes, in the model's order.
        name: The model's name.
    """

    def __init__(self, nodes: Iterable[Node], inputs: list[str], outputs: list[str], name: str):
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.name = name

    # -- Queries -------------------------------------------------------------
    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def order(self) -> list[str]:
        """Node names in a deterministic topological order (inputs first)."""
        seen: set[str] = set()
        order: list[str] = []
        for out in self.outputs:
            stack = [(out, False)]
            while stack:
                name, expanded = stack.pop()
                if expanded:
                    order.append(name)
                    continue
                if name in seen:
                    continue
                seen.add(name)
                stack.append((name, True))
                for parent in reversed(self.nodes[name].inputs):
                    if parent not in seen:
                        stack.append((parent, False))
        return order

    def consumers(self) -> dict[str, list[str]]:
        """For every node, the nodes called on its output (each listed once)."""
        result: dict[str, list[str]] = {name: [] for name in self.nodes}
        for name in self.order():
            for parent in dict.fromkeys(self.nodes[name].inputs):
                result[parent].append(name)
        return result

    def descendants(self, name: str, consumers: dict[str, list[str]] | None = None) -> set[str]:
        """The nodes computed from `name`'s output, `name` included.

        `consumers` may pass `self.consumers()` when the caller has it.
        """
        consumers = self.consumers() if consumers is None else consumers
        seen, stack = {name}, [name]
        while stack:
            for child in consumers[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def fresh_prefix(self, stem: str) -> str:
        """The first `"{stem}{k}"` that no node name starts with."""
        k = 0
        while any(name.startswith(f"{stem}{k}_") for name in self.nodes):
            k += 1
        return f"{stem}{k}"

    # -- Edits ---------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise ValueError(f"The model already has a layer named {node.name!r}.")
        self.nodes[node.name] = node
        return node

    def rewire(self, old: str, new: str, only: Iterable[str], outputs: bool) -> None:
        """Makes the layers named in `only` (and the model outputs if `outputs`)
        read `new` instead of `old`."""
        for name in only:
            node = self.nodes[name]
            node.inputs = [new if i == old else i for i in node.inputs]
        if outputs:
            self.outputs = [new if o == old else o for o in self.outputs]

    def copy(self) -> Graph:
        """A copy that morphisms can edit without touching this graph.

        Configs are copied one level deep (the transforms set top-level keys
        only); weight arrays are shared, which is safe because the transforms
        replace arrays instead of writing into them.
        """
        nodes = [
            dataclasses.replace(
                n, inputs=list(n.inputs), config=dict(n.config), weights=dict(n.weights)
            )
            for n in self.nodes.values()
        ]
        return Graph(nodes, list(self.inputs), list(self.outputs), self.name)

    def shallow_copy(self) -> Graph:
        """A copy whose wiring can be edited (configs and weights are shared)."""
        nodes = [dataclasses.replace(n, inputs=list(n.inputs)) for n in self.nodes.values()]
        return Graph(nodes, self.inputs, self.outputs, self.name)


def new_node(
    layer: keras.layers.Layer,
    inputs: list[str],
    shape: tuple[int | None, ...],
    weights: dict[str, np.ndarray] | None = None,
    dtype: Any = None,
    as_list: bool = False,
) -> Node:
    """A node for a freshly made (unbuilt) layer.

    Args:
        layer: The layer; only its class and config are kept.
        inputs: Names of the nodes it reads.
        shape: Its output shape without the batch axis.
        weights: Its weights by short variable name, or None for none.
        dtype: A dtype-policy config to give it (that of a neighbouring layer,
            so that mixed-precision models stay consistent), or None.
        as_list: Whether it is called on a list of tensors.
    """
    config = layer.get_config()
    if dtype is not None:
        config["dtype"] = copy.deepcopy(dtype)
    return Node(
        name=layer.name,
        layer_cls=type(layer),
        config=config,
        inputs=list(inputs),
        as_list=as_list,
        weights=dict(weights or {}),
        shape=tuple(shape),
    )


def from_model(model: keras.Model) -> Graph:
    """Reads a functional model into a `Graph` (weights copied).

    Raises:
        ValueError: if the model is not functional, or uses a layer the graph
            cannot hold (a nested model, a non-layer operation, a layer called
            twice, with keyword arguments or with several outputs).
    """
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not isinstance(model, keras.Model) or not inputs or not outputs:
        raise ValueError(
            "Network morphisms apply to functional Keras models (built with "
            f"keras.Model(inputs, outputs)). Received: {model!r}."
        )
    nodes: dict[str, Node] = {}
    # Layer name -> (layer, index of its call in this model), to detect reuse.
    calls: dict[str, tuple[Any, int]] = {}

    def call_of(tensor) -> tuple[str, Any, Any]:
        """The layer name, layer and call (node) that made a tensor."""
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError(f"The tensor {tensor!r} does not come from a Keras layer.")
        operation, node_index, tensor_index = history
        if not isinstance(operation, keras.layers.Layer) or isinstance(operation, keras.Model):
            raise ValueError(
                f"Operation {operation.name!r} ({type(operation).__name__}) is not a "
                "built-in layer; morphisms handle models made of layers only (no nested "
                "models, no keras.ops calls on symbolic tensors)."
            )
        name = operation.name
        if name in calls and (calls[name][0] is not operation or calls[name][1] != node_index):
            raise ValueError(
                f"Layer {name!r} is called more than once (or two layers share the "
                "name); morphisms need every layer called once."
            )
        calls[name] = (operation, node_index)
        node = operation._inbound_nodes[node_index]
        if tensor_index != 0 or len(node.outputs) != 1:
            raise ValueError(f"Layer {name!r} has several outputs; morphisms need one.")
        return name, operation, node

    def arguments(name: str, node) -> tuple[list, bool]:
        if node.is_input:
            return [], False
        args, kwargs = node.arguments.args, node.arguments.kwargs
        # Keras records `mask=None` for some layers and `training=False` for those that
        # take it (Dropout: the flag given when the model runs replaces it); other keywords
        # are refused.
        extra = [k for k, v in kwargs.items() if v is not None and k != "training"]
        if extra or len(args) != 1:
            raise ValueError(
                f"Layer {name!r} is called with extra arguments; morphisms need layers "
                "called on one tensor or one list of tensors."
            )
        arg = args[0]
        as_list = isinstance(arg, (list, tuple))
        return list(arg) if as_list else [arg], as_list

    # Depth-first from the outputs; a layer is read once all its inputs are.
    stack = [(t, False) for t in reversed(list(outputs) + list(inputs))]
    while stack:
        tensor, ready = stack.pop()
        name, operation, node = call_of(tensor)
        if name in nodes:
            continue
        parents, as_list = arguments(name, node)
        if not ready:
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(parents))
            continue
        shape = tuple(tensor.shape[1:])
        if node.is_input:
            config = operation.get_config()
            nodes[name] = Node(name, keras.layers.InputLayer, config, [], False, {}, shape)
            continue
        weights = {v.name: np.array(keras.ops.convert_to_numpy(v.value)) for v in operation.weights}
        if len(weights) != len(operation.weights):
            raise ValueError(f"Layer {name!r} has two variables of the same name.")
        nodes[name] = Node(
            name=name,
            layer_cls=type(operation),
            config=operation.get_config(),
            inputs=[call_of(t)[0] for t in parents],
            as_list=as_list,
            weights=weights,
            shape=shape,
        )
    renamed = _numbered_names(nodes.values())
    graph = Graph(
        [_renamed(node, renamed) for node in nodes.values()],
        [renamed.get(n, n) for n in (call_of(t)[0] for t in inputs)],
        [renamed.get(n, n) for n in (call_of(t)[0] for t in outputs)],
        model.name,
    )
    missing = set(graph.nodes) - set(graph.order())
    if missing:
        raise ValueError(f"Layers {sorted(missing)} do not lead to the model's outputs.")
    return graph


def _snake_case(class_name: str) -> str:
    """The prefix of Keras's automatic names for a layer class (`Conv2D` -> `conv2d`)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _numbered_names(nodes: Iterable[Node]) -> dict[str, str]:
    """Keras's automatic layer names (`conv2d_15`) renumbered in the graph's own order.

    Keras numbers unnamed layers by a counter of the whole session, so the same
    architecture built twice (by a strategy, and by a trial after `clear_session`)
    gets other names; morph ops name layers. Renumbering them per class in the
    order the graph is read (from the model's structure, not the names) gives
    every build of an architecture the same names. Names a space gave its layers
    (not of the form `<class in snake case>[_<n>]`) are kept.
    """
    counts: dict[str, int] = {}
    renamed: dict[str, str] = {}
    for node in nodes:
        base = _snake_case(node.layer_cls.__name__)
        if re.fullmatch(rf"{re.escape(base)}(_\d+)?", node.name):
            count = counts[base] = counts.get(base, 0) + 1
            renamed[node.name] = base if count == 1 else f"{base}_{count - 1}"
    return renamed


def _renamed(node: Node, renamed: dict[str, str]) -> Node:
    name = renamed.get(node.name, node.name)
    config = {**node.config, "name": name} if "name" in node.config else node.config
    inputs = [renamed.get(n, n) for n in node.inputs]
    return dataclasses.replace(node, name=name, config=config, inputs=inputs)


def to_model(graph: Graph) -> keras.Model:
    """Builds the functional model of a graph and loads its weights."""
    tensors: dict[str, Any] = {}
    for name in graph.order():
        node = graph.nodes[name]
        if node.is_a(keras.layers.InputLayer):
            config = node.config
            tensors[name] = keras.Input(
                batch_shape=config["batch_shape"], dtype=config.get("dtype"), name=name
            )
            continue
        layer = node.layer_cls.from_config(copy.deepcopy(node.config))
        if layer.name != name:
            raise ValueError(f"Internal error: layer {name!r} was rebuilt as {layer.name!r}.")
        args = [tensors[i] for i in node.inputs]
        out = layer(args if node.as_list else args[0])
        if tuple(out.shape[1:]) != tuple(node.shape):
            raise ValueError(
                f"Internal error: layer {name!r} outputs shape {tuple(out.shape[1:])}, "
                f"the morphism expected {tuple(node.shape)}."
            )
        names = [v.name for v in layer.weights]
        if sorted(names) != sorted(node.weights):
            raise ValueError(
                f"Internal error: layer {name!r} has variables {names}, the morphism "
                f"gave {sorted(node.weights)}."
            )
        if names:
            layer.set_weights([node.weights[n] for n in names])
        tensors[name] = out
    inputs = [tensors[i] for i in graph.inputs]
    outputs = [tensors[o] for o in graph.outputs]
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
    )
