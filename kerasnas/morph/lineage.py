"""How a morphism trial names its network: a root architecture plus op strings.

Network-morphism search (`kerasnas.oracles.MorphismOracle`) grows networks
beyond what a space's decisions can say, so a trial's hyperparameter values
carry, next to the root architecture's decision values, the lineage of the
trial's network, as plain values that cross keras-tuner's chief/worker gRPC:

* `morph/ops`: a JSON list of every op string applied to the root's model,
  in order (`"[]"` for a root);
* `morph/parent`: the id of the trial whose trained weights the child
  inherits (`""` for a root);
* `morph/parent_ops`: how many of the ops the parent already had (the child
  applies the rest to the parent's trained model);
* `morph/noise`: Net2Net symmetry-breaking noise of the new ops;
* `morph/lr_scale`: the child trains at its parent's learning rate times
  this (fine-tuning inherited weights wants a smaller rate than training
  from scratch).

The model of a trial is `apply(space.build(root), ops)`: op strings name
layers, and the spaces name every layer deterministically, so rebuilding a
parent this way gives the model its checkpoint was saved from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import keras

from kerasnas.architecture import Architecture

OPS = "morph/ops"
PARENT = "morph/parent"
PARENT_OPS = "morph/parent_ops"
NOISE = "morph/noise"
LR_SCALE = "morph/lr_scale"
KEYS = (OPS, PARENT, PARENT_OPS, NOISE, LR_SCALE)


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The morphism lineage of a trial's network.

    Args:
        ops: Every op applied to the root's model, in order.
        parent: The trial whose weights the child inherits ("" for none).
        parent_ops: How many of `ops` the parent has.
        noise: Net2Net noise of the child's new ops.
        lr_scale: Factor of the parent's learning rate the child trains at
            when it inherits.
    """

    ops: tuple[str, ...] = ()
    parent: str = ""
    parent_ops: int = 0
    noise: float = 0.0
    lr_scale: float = 1.0

    @property
    def new_ops(self) -> tuple[str, ...]:
        """The ops the child adds to its parent."""
        return self.ops[self.parent_ops :]

    def values(self) -> dict[str, Any]:
        """The hyperparameter values that carry this lineage."""
        return {
            OPS: json.dumps(list(self.ops)),
            PARENT: self.parent,
            PARENT_OPS: int(self.parent_ops),
            NOISE: float(self.noise),
            LR_SCALE: float(self.lr_scale),
        }


def of(values: Mapping[str, Any]) -> Lineage | None:
    """The lineage in a trial's values, or None for a plain architecture trial."""
    if OPS not in values:
        return None
    try:
        ops = json.loads(values[OPS])
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"The trial value {OPS}={values[OPS]!r} is not a JSON list of op strings."
        ) from None
    parent_ops = int(values.get(PARENT_OPS, 0))
    if not 0 <= parent_ops <= len(ops):
        raise ValueError(f"The trial value {PARENT_OPS}={parent_ops} must lie in [0, {len(ops)}].")
    return Lineage(
        tuple(ops),
        str(values.get(PARENT, "")),
        parent_ops,
        float(values.get(NOISE, 0.0)),
        float(values.get(LR_SCALE, 1.0)),
    )


def grown(values: Mapping[str, Any]) -> bool:
    """Whether a trial's network has morphism ops beyond its root architecture."""
    lineage = of(values)
    return lineage is not None and bool(lineage.ops)


def key(arch: Architecture, values: Mapping[str, Any]) -> str:
    """A hash of the trial's network: the root's canonical hash, and its ops."""
    lineage = of(values)
    if lineage is None or not lineage.ops:
        return arch.hash()
    text = json.dumps([arch.hash(), list(lineage.ops)])
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def build(space: Any, values: Mapping[str, Any], ops: Any = None) -> keras.Model:
    """The model of a trial's network (fresh weights): the root grown by its ops.

    Args:
        space: The `SearchSpace` the root architecture belongs to.
        values: The trial's hyperparameter values.
        ops: The ops to apply; defaults to all of the lineage's.
    """
    from kerasnas import morph  # Imported here: kerasnas.morph imports this module.

    model = space.build(space.decode(values))
    lineage = of(values)
    ops = (lineage.ops if lineage else ()) if ops is None else ops
    return morph.apply(model, list(ops)) if ops else model


def graph(space: Any, values: Mapping[str, Any]) -> Any:
    """The morph graph (`kerasnas.morph.graph.Graph`) of a trial's network, weights untrained."""
    import numpy as np

    from kerasnas.morph import graph as graph_module  # Here: kerasnas.morph imports this module.
    from kerasnas.morph import transforms

    result = graph_module.from_model(space.build(space.decode(values)))
    rng = np.random.default_rng(0)
    for op in (of(values) or Lineage()).ops:
        transforms.apply_op(result, op, rng)
    return result
