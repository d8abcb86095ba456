"""A finished trial's model and traced graphs are freed (no memory growth across trials)."""

import gc
import weakref

import keras
import tensorflow as tf
from tensorflow.python.framework.func_graph import FuncGraph

import kerasnas as kn
from kerasnas import _memory
from kerasnas.training import evaluators
from tests import tiny


class _WatchModels(keras.callbacks.Callback):
    """Keeps a weak reference to every model it sees trained.

    In a class attribute: keras-tuner deep-copies the callbacks of each trial.
    """

    refs: list = []

    def on_train_end(self, logs=None):
        _WatchModels.refs.append(weakref.ref(self.model))


def _func_graphs() -> list:
    return [o for o in gc.get_objects() if isinstance(o, FuncGraph)]


def _search(tmp_path, max_trials: int = 2) -> tuple[list, list]:
    """Runs a search; returns weak references to its models and to its surviving graphs."""
    (x, y), val = tiny.digits(train=200, val=60)
    gc.collect()
    earlier = weakref.WeakSet(_func_graphs())
    _WatchModels.refs = []
    search = kn.Search(
        tiny.fast_space(), max_trials=max_trials, seed=0, directory=str(tmp_path), verbose=0
    )
    search.fit(x, y, validation_data=val, epochs=1, callbacks=[_WatchModels()])
    del search
    gc.collect()
    return _WatchModels.refs, [weakref.ref(g) for g in _func_graphs() if g not in earlier]


def test_trained_models_and_their_graphs_are_freed_after_their_trials(tmp_path):
    models, graphs = _search(tmp_path)
    assert len(models) == 2
    assert [m() is None for m in models] == [True, True]
    assert [g().name for g in graphs] == []


def test_without_the_release_tensorflow_keeps_the_training_graphs(tmp_path, monkeypatch):
    # The leak the release prevents: gradient-registry entries hold the trials' graphs.
    monkeypatch.setattr(evaluators, "release_graphs", lambda before: None)
    before = _memory.custom_gradient_names()
    try:
        _, graphs = _search(tmp_path, max_trials=1)  # One trial shows the leak.
        assert "one_step_on_data" in [g().name for g in graphs]
    finally:
        _memory.forget_custom_gradients(before)
    gc.collect()
    assert [g() for g in graphs if g() is not None] == []


def test_forget_custom_gradients_frees_the_traced_graph():
    before = _memory.custom_gradient_names()

    @tf.custom_gradient
    def double(x):
        return 2 * x, lambda dy: 2 * dy

    function = tf.function(lambda x: double(x))
    graph = weakref.ref(function.get_concrete_function(tf.TensorSpec([None])).graph)
    del function
    gc.collect()
    added = _memory.custom_gradient_names() - before
    assert len(added) == 1
    assert graph() is not None  # Held by the registered gradient function.
    assert _memory.forget_custom_gradients(before) == 1
    gc.collect()
    assert graph() is None
    assert _memory.custom_gradient_names() == before
