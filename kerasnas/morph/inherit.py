"""A morphism trial's model: its root grown by its ops, inheriting the parent's weights.

`kerasnas.oracles.MorphismOracle.model_for_trial` calls `grow`; the trial
runner knows nothing of it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import keras

from kerasnas import morph
from kerasnas.morph.lineage import Lineage

log = logging.getLogger(__name__)

# The trial metric: 1 when the child started from its parent's trained weights, else 0.
INHERITED = "inherited"


def grow(root: keras.Model, found: Lineage, context: Any) -> keras.Model:
    """The model of a trial whose lineage is `found`, grown from `root` (its root's model).

    When the trial trains (`context.training`), the child inherits: the
    parent is rebuilt (root plus the parent's ops), its checkpoint loaded,
    and the new ops applied (keeping the parent's function). Without the
    parent's checkpoint the child starts from scratch, and the trial records
    why. Otherwise (loading a trained trial, or retraining it) the network
    is built with fresh weights.

    Args:
        root: The root architecture's compiled model.
        found: The trial's lineage.
        context: The runner's `kerasnas.oracles.TrialContext`.
    """
    if not found.ops:
        return root
    with context.scope():
        if not context.training:
            return morph.apply(root, list(found.ops))
        return _inherit(root, found, context)


def _inherit(root: keras.Model, found: Lineage, context: Any) -> keras.Model:
    trial_id = context.trial.trial_id
    checkpoint = context.checkpoint(found.parent) if found.parent else None
    record = {"parent": found.parent, "ops": list(found.ops), "new_ops": list(found.new_ops)}
    if checkpoint is not None:
        # Uncompiled: the checkpoint's optimizer state (its learning rate included)
        # must not reach the child, which is compiled like the root.
        parent = morph.apply(root, list(found.ops[: found.parent_ops]), compile=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            parent.load_weights(checkpoint)
        child = morph.apply(
            parent, list(found.new_ops), seed=context.seed, noise=found.noise, compile=False
        )
        config = root.get_compile_config()
        config["optimizer"] = scaled_learning_rate(root.optimizer, found.lr_scale)
        child.compile_from_config(config)
        context.record(
            metrics={INHERITED: 1.0},
            files={"morph.json": {**record, "inherited": True, "reason": None}},
        )
        return child
    reason = (
        f"the checkpoint of parent trial {found.parent} is missing"
        if found.parent
        else "the trial has no parent trial"
    )
    log.info("trial %d: %s; training the child network from scratch", int(trial_id) + 1, reason)
    context.record(
        metrics={INHERITED: 0.0},
        files={"morph.json": {**record, "inherited": False, "reason": reason}},
    )
    return morph.apply(root, list(found.ops), seed=context.seed)


def scaled_learning_rate(optimizer: keras.optimizers.Optimizer, scale: float) -> dict:
    """The config of an optimizer like `optimizer` with `scale` times its learning rate.

    A learning-rate schedule is scaled through its config (its initial rate,
    warm-up target or piecewise values).
    """
    config = keras.optimizers.serialize(optimizer)
    rate = config["config"]["learning_rate"]
    if isinstance(rate, dict):
        inner = rate["config"]
        for key in ("initial_learning_rate", "warmup_target"):
            if inner.get(key) is not None:
                inner[key] = float(inner[key]) * scale
        if "values" in inner:
            inner["values"] = [float(v) * scale for v in inner["values"]]
    else:
        config["config"]["learning_rate"] = float(rate) * scale
    return config
