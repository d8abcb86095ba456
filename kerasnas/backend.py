"""Which Keras backend runs, and the few things kerasnas does differently per backend.

Keras 3 runs a model on TensorFlow, JAX or PyTorch (`KERAS_BACKEND`, read once
when keras is first imported). kerasnas's spaces build, and its trial runner
trains, through Keras alone, so every space and most strategies run on all
three. Three things need more than Keras's layers and `fit`, and live here:

- `compiled`: a function of Keras ops compiled once per input signature
  (`tf.function`, `jax.jit`; eager under PyTorch);
- `train_step`: one compiled optimizer step on a loss of Keras ops, for
  learning that is not `model.fit` (the controller's policy);
- `require_tensorflow`: the one-line refusal of what stays TensorFlow-only
  (tf.distribute strategies, the one-shot supernets' training loops).

docs/backends.md lists what runs where.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras


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


def _tensors(args: Sequence[Any]) -> list[Any]:
    """Arrays as the backend's tensors (None stays None)."""
    return [None if a is None else keras.ops.convert_to_tensor(a) for a in args]


def _with_values(fn: Callable[..., Any], variables: Sequence[keras.Variable]) -> Callable:
    """`fn` as a pure function of the variables' values (JAX): `(values, *args) -> fn(*args)`."""

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn(*args)

    return pure


def compiled(fn: Callable[..., Any], variables: Sequence[keras.Variable]) -> Callable[..., Any]:
    """`fn`, a function of Keras ops that reads (never assigns) `variables`, compiled once.

    Under TensorFlow a `tf.function`, under JAX a `jax.jit` of `fn` with the
    variables' current values passed in, under PyTorch `fn` itself (without
    autograd). Arguments are tensors, arrays or None; it retraces per shape.

    Args:
        fn: The function to compile.
        variables: The variables `fn` reads.
    """
    variables = list(variables)
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        traced = tf.function(fn, reduce_retracing=True)
        return lambda *args: traced(*_tensors(args))
    if backend == "jax":
        import jax

        jitted = jax.jit(_with_values(fn, variables))
        return lambda *args: jitted([v.value for v in variables], *_tensors(args))

    import torch

    def eager(*args):
        with torch.no_grad():
            return fn(*_tensors(args))

    return eager


def train_step(
    loss: Callable[..., Any],
    variables: Sequence[keras.Variable],
    optimizer: keras.optimizers.Optimizer,
) -> Callable[..., float]:
    """One optimizer step on `loss(*args)`, compiled once: learning that is not `model.fit`.

    The returned function computes the loss, its gradient with respect to each
    of `variables` (zero for a variable the loss does not use) and applies
    them with `optimizer` (built on `variables`), and returns the loss as a
    float. TensorFlow: one `tf.function`; JAX: one `jax.jit` of the loss, its
    gradients and `optimizer.stateless_apply`, whose results are assigned back;
    PyTorch: autograd and `optimizer.apply`, eagerly. Arguments are tensors,
    arrays or None.

    Args:
        loss: A function of Keras ops returning a scalar; it reads, never
            assigns, the variables.
        variables: The variables to learn.
        optimizer: The optimizer, built on `variables` (`optimizer.build`).
    """
    variables = list(variables)
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def tf_step(*args):
            with tf.GradientTape() as tape:
                value = loss(*args)
            grads = tape.gradient(value, variables)
            pairs = zip(grads, variables, strict=True)
            grads = [tf.zeros_like(v) if g is None else g for g, v in pairs]
            optimizer.apply(grads, variables)
            return value

        return lambda *args: float(tf_step(*_tensors(args)))
    if backend == "jax":
        import jax

        def stateless_step(values, optimizer_values, *args):
            value, grads = jax.value_and_grad(_with_values(loss, variables))(values, *args)
            values, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, values)
            return value, values, optimizer_values

        jitted = jax.jit(stateless_step)

        def jax_step(*args):
            value, values, optimizer_values = jitted(
                [v.value for v in variables],
                [v.value for v in optimizer.variables],
                *_tensors(args),
            )
            for v, new in zip(variables, values, strict=True):
                v.assign(new)
            for v, new in zip(optimizer.variables, optimizer_values, strict=True):
                v.assign(new)
            return float(value)

        return jax_step

    import torch

    def torch_step(*args):
        value = loss(*_tensors(args))
        watched = [v.value for v in variables]
        grads = torch.autograd.grad(value, watched, allow_unused=True)
        pairs = zip(grads, watched, strict=True)
        grads = [torch.zeros_like(v) if g is None else g for g, v in pairs]
        optimizer.apply(grads, variables)
        return float(value.detach())

    return torch_step
