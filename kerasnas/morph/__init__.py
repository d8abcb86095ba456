"""Network morphisms: grow a trained Keras model without changing its function.

A child network is its parent plus a few morphism operations (Wei et al. 2016,
"Network Morphism"; Chen, Goodfellow & Shlens 2016, "Net2Net"; Jin, Song & Hu
2019, "Auto-Keras"). `apply` returns the child with the parent's weights
transformed so that, in inference mode, it computes the parent's function;
training then starts from there.

Operations are plain strings naming layers of the model they apply to:

* `"deepen:LAYER[:KERNEL]"`: an identity Conv2D-BatchNorm(-ReLU) block after
  LAYER's block;
* `"widen:LAYER:N"`: N more output units for LAYER (Net2Wider);
* `"skip:FROM:TO"` / `"skipcat:FROM:TO"`: FROM's block output added
  (through a zero 1x1 convolution) to, or concatenated (with zero weights)
  onto, TO's input;
* `"block:OUT:A:OP_A:B:OP_B"`: a NASNet block `OP_A(A) + OP_B(B)` added to
  the cell whose output is OUT, contributing zero.

Op strings are relative to the model they were proposed for: they name its
layers. They apply to that model, to a copy saved and reloaded with
`keras.models.load_model` (names are saved), and to a model rebuilt the same
way in a fresh process only when its layers get the same names (spaces that
name every layer, like `ChainSpace`; Keras's automatic names such as
`conv2d_7` depend on what was built before in the session). See
`docs/morph.md`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import keras
import numpy as np

from kerasnas.morph import graph as graph_module
from kerasnas.morph import transforms
from kerasnas.morph.transforms import KINDS, parse
from kerasnas.spaces.nasnet import DEFAULT_OPS

__all__ = ["KINDS", "apply", "random_ops"]


def random_ops(
    model: keras.Model,
    n: int,
    seed: int | None = None,
    *,
    kinds: Sequence[str] = KINDS,
    block_ops: Sequence[str] = DEFAULT_OPS,
) -> list[str]:
    """Proposes `n` morphism operations that apply, in order, to `model`.

    Each step draws a kind uniformly among those with a target (deepen,
    widen, skip, skipcat and, for cell models, block), then a target uniformly;
    widening adds a quarter, half or all of the layer's units, deepening uses
    a 3x3 or 5x5 kernel. Later ops may name layers added by earlier ones.

    Args:
        model: A functional model (e.g. built by `ChainSpace` or `NASNetSpace`).
        n: How many operations.
        seed: Seed of the draws; the same seed gives the same ops on the same
            model. None draws fresh randomness.
        kinds: The op kinds to draw from. Defaults to all.
        block_ops: The ops (`kerasnas.spaces.ops` names) of new cell blocks.
            Defaults to NASNet's default ops.

    Returns:
        The op strings, for `apply(model, ops)`.

    Raises:
        ValueError: if `kinds` names an unknown kind, or the model admits no
            op of those kinds.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"Unknown morphism kinds {sorted(unknown)}; known: {list(KINDS)}.")
    if n < 0:
        raise ValueError(f"n must be non-negative. Received: n={n}.")
    graph = graph_module.from_model(model)
    rng = np.random.default_rng(seed)
    ops: list[str] = []
    for _ in range(n):
        op = transforms.propose(graph, rng, tuple(kinds), tuple(block_ops))
        transforms.apply_op(graph, op, _op_rng(0, len(ops), op))
        ops.append(op)
    return ops


def apply(
    model: keras.Model,
    ops: Sequence[str] | str,
    *,
    seed: int = 0,
    noise: float = 0.0,
    compile: bool = True,
) -> keras.Model:
    """Applies morphism operations to a model; returns the child model.

    The child is a new functional model (the parent is left unchanged) whose
    weights are the parent's, transformed so that `child(x, training=False)`
    equals `model(x, training=False)` up to float rounding (noise 0). It is
    compiled like the parent (a fresh optimizer of the same class and
    configuration, the same loss and metrics).

    Args:
        model: The parent, a functional model made of built-in layers.
        ops: Op strings (see the module doc), applied in order; later ones
            may name layers that earlier ones added.
        seed: Seed of the units `widen` copies and of new weights that do not
            affect the function (new blocks' branches).
        noise: Net2Net symmetry breaking: standard deviation, relative to
            each kernel's own, of noise added to the outgoing weights of
            copied units. The noise sums to zero over the copies of a unit,
            so the function is still preserved exactly in exact arithmetic.
            Defaults to 0.
        compile: Whether to compile the child like the parent (when the
            parent is compiled).

    Returns:
        The child model.

    Raises:
        ValueError: (a `kerasnas.errors.MorphError`) naming the first op that does not apply
            and why.
    """
    if isinstance(ops, str):
        ops = [ops]
    if noise < 0:
        raise ValueError(f"noise must be non-negative. Received: noise={noise}.")
    graph = graph_module.from_model(model)
    for index, op in enumerate(ops):
        parse(op)  # Checks the type and grammar first.
        transforms.apply_op(graph, op, _op_rng(seed, index, op), noise)
    child = graph_module.to_model(graph)
    if compile and getattr(model, "compiled", False):
        config = model.get_compile_config()
        if getattr(model, "optimizer", None) is not None:
            # The optimizer's current configuration (learning rate included), fresh state.
            config["optimizer"] = keras.optimizers.serialize(model.optimizer)
        child.compile_from_config(config)
    return child


def _op_rng(seed: int, index: int, op: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), index, zlib.crc32(op.encode("utf-8"))])
