"""Releasing what TensorFlow keeps of a finished trial's training graphs.

Each time Keras traces a model's training step under TensorFlow, the
optimizer all-reduces the gradients through the replica context (even
without a distribution strategy:
`keras/src/backend/tensorflow/optimizer.py::_all_reduce_sum_gradients`).
That all-reduce is a `tf.custom_gradient`, which in graph mode registers its
gradient function in TensorFlow's process-wide gradient registry under a
fresh name, `CustomGradient-<uid>`, and never unregisters it. The function's
closure holds the traced tensors, hence the whole `FuncGraph` of the training
step, its captured variables and everything the model reaches: `clear_session()`
and `gc.collect()` cannot free any of it, and a long search grows by the size
of every trial's graphs (tens of MiB for a small convolutional network).

A trial's traced graphs are dead once the trial ends (the next trial builds
and traces a new model), so the entries it registered can go with them.
"""

from __future__ import annotations

import keras

_PREFIX = "CustomGradient-"


def _registry() -> dict | None:
    """TensorFlow's gradient registry (name -> entry), or None if there is none."""
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python.framework import ops
    except ImportError:  # pragma: no cover - TensorFlow without this module.
        return None
    registry = getattr(getattr(ops, "gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def custom_gradient_names() -> frozenset[str]:
    """The names under which `tf.custom_gradient` functions are registered now."""
    registry = _registry()
    if registry is None:
        return frozenset()
    return frozenset(name for name in registry if name.startswith(_PREFIX))


def forget_custom_gradients(keep: frozenset[str]) -> int:
    """Unregisters the `tf.custom_gradient` functions registered since `keep`.

    Graphs traced after `keep` was taken can no longer be differentiated
    through their custom-gradient ops; calling them (or tracing new graphs)
    is unaffected.

    Args:
        keep: The names from `custom_gradient_names()` taken before the graphs
            to release were traced; these stay registered.

    Returns:
        The number of entries removed.
    """
    registry = _registry()
    if registry is None:
        return 0
    names = [n for n in list(registry) if n.startswith(_PREFIX) and n not in keep]
    for name in names:
        registry.pop(name, None)
    return len(names)
