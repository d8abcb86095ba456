"""How a morphism trial names its network: a root architecture plus op strings.

Network-morphism search (`kerasnas.oracles.MorphismOracle`) grows networks
beyond what a space's decisions can say. A trial's values are its root
architecture's decisions; its `TrialPlan` (`kerasnas.plan`) carries the
`Lineage` of the trial's network: every op string applied to the root's model,
the trial whose trained weights the child inherits, how many of the ops that
parent has, the Net2Net noise of the new ops and the learning-rate factor.

The model of a trial is `apply(space.build(root), ops)`: op strings name
layers, and the spaces name every layer deterministically, so rebuilding a
parent this way gives the model its checkpoint was saved from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from kerasnas.architecture import Architecture
from kerasnas.plan import Lineage

__all__ = ["Lineage", "build", "graph", "key"]


def key(arch: Architecture, ops: Sequence[str] = ()) -> str:
    """A hash of a network: the root's canonical hash, and the ops grown on it."""
    if not ops:
        return arch.hash()
    text = json.dumps([arch.hash(), list(ops)])
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def build(space: Any, values: Mapping[str, Any], ops: Sequence[str] = ()) -> keras.Model:
    """The model of a network (fresh weights): the root's grown by `ops`.

    Args:
        space: The `SearchSpace` the root architecture belongs to.
        values: The trial's hyperparameter values (the root architecture).
        ops: The ops to apply (a trial's `plan.lineage.ops`).
    """
    from kerasnas import morph  # Imported here: kerasnas.morph imports this module.

    model = space.build(space.decode(values))
    return morph.apply(model, list(ops)) if ops else model


def graph(space: Any, values: Mapping[str, Any], ops: Sequence[str] = ()) -> Any:
    """The morph graph (`kerasnas.morph.graph.Graph`) of a trial's network, weights untrained."""
    import numpy as np

    from kerasnas.morph import graph as graph_module  # Here: kerasnas.morph imports this module.
    from kerasnas.morph import transforms

    result = graph_module.from_model(space.build(space.decode(values)))
    rng = np.random.default_rng(0)
    for op in ops:
        transforms.apply_op(result, op, rng)
    return result
