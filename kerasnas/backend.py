"""Which Keras backend runs, and the few things kerasnas does differently per backend.

Keras 3 runs a model on TensorFlow, JAX or PyTorch (`KERAS_BACKEND`, read once
when keras is first imported). kerasnas's spaces build, and its trial runner
trains, through Keras alone, so every space and most strategies run on all
three. Three things need more than Keras's layers and `fit`, and live here:

- `compiled`: a function of Keras ops compiled once per input signature
  (`tf.function`, `jax.jit`; eager under PyTorch), optionally returning its
  gradients with respect to some variables: learning that is not `model.fit`
  (the controller's policy);
- `require_tensorflow`: the one-line refusal of what stays TensorFlow-only
  (tf.distribute strategies, the one-shot supernets' training loops).

docs/backends.md lists what runs where.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

#: The backends kerasnas runs on.
BACKENDS = ("tensorflow", "jax", "torch")


def name() -> str:
    """The Keras backend of this process: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def require_tensorflow(what: str, instead: str = "") -> None:
    """Raises ValueError, naming `what` and the fix, unless Keras runs on TensorFlow.

    Called where a TensorFlow-only option is chosen (a constructor, `fit`), so
    that it is refused before any work.

    Args:
        what: What needs TensorFlow, as the start of a sentence (e.g.
            "strategy='darts' (its supernet's training loop)").
        instead: What runs on every backend, if there is something (e.g.
            "strategies 'random', 'evolution', ..."): added to the message.
    """
    backend = name()
    if backend != "tensorflow":
        other = f", or use {instead}, which run on every backend" if instead else ""
        raise ValueError(
            f"{what} runs on Keras's TensorFlow backend only, and this process runs "
            f"KERAS_BACKEND={backend}. Set KERAS_BACKEND=tensorflow before keras is first "
            f"imported{other} (docs/backends.md lists what runs where)."
        )


def compiled(
    fn: Callable[..., Any],
    variables: Callable[[], Sequence[keras.Variable]],
    *,
    differentiate: bool = False,
) -> Callable[..., Any]:
    """`fn`, a function of Keras ops that reads (never assigns) variables, compiled once.

    Under TensorFlow a `tf.function`, under JAX a `jax.jit` of `fn` with the
    current values of `variables()` passed in, under PyTorch `fn` itself.
    Arguments are tensors, arrays or None; retracing happens per shape.

    With `differentiate=True`, `fn` returns a scalar loss and the compiled
    function returns `(loss, grads)`: one gradient per variable of
    `variables()`, zeros for one the loss does not use, of the backend's type
    (`optimizer.apply(grads, variables)` takes them).

    Args:
        fn: The function to compile.
        variables: Returns the variables `fn` reads (called at each call, so
            variables created after `compiled` are seen).
        differentiate: Whether to return the loss's gradients too.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        if not differentiate:
            return tf.function(fn, reduce_retracing=True)

        @tf.function(reduce_retracing=True)
        def step(*args):
            watched = list(variables())
            with tf.GradientTape() as tape:
                loss = fn(*args)
            grads = tape.gradient(loss, watched)
            return loss, [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, watched, strict=True)
            ]

        return step
    if backend == "jax":
        import jax

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables(), values, strict=True))):
                return fn(*args)

        jitted = jax.jit(jax.value_and_grad(stateless) if differentiate else stateless)
        return lambda *args: jitted([v.value for v in variables()], *args)

    import torch

    def eager(*args):
        if not differentiate:
            with torch.no_grad():
                return fn(*args)
        watched = [v.value for v in variables()]
        loss = fn(*args)
        grads = torch.autograd.grad(loss, watched, allow_unused=True)
        return loss.detach(), [
            torch.zeros_like(v) if g is None else g for g, v in zip(grads, watched, strict=True)
        ]

    return eager
