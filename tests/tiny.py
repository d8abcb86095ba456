"""Small, fast fixtures shared by the tests: a digits subset, a tiny space, relabelling."""

import contextlib
import functools
import os
import pathlib
import warnings

import pytest

import kerasnas as kn


@functools.lru_cache(maxsize=1)
def _digits():
    return kn.data.load("digits")


def digits(train: int = 400, val: int = 150):
    """A subset of the digits train and validation splits."""
    (x, y), (xv, yv), _ = _digits()
    return (x[:train], y[:train]), (xv[:val], yv[:val])


def test_split():
    return _digits()[2]


def space(**kwargs) -> kn.spaces.NASNetSpace:
    """A NASNet space small enough to build and train a trial in seconds."""
    config = dict(
        num_blocks=2,
        num_cells=1,
        num_reductions=1,
        filters=8,
        ops=["sep_conv_3x3", "max_pool_3x3", "identity"],
        learning_rate=0.01,
    )
    config.update(kwargs)
    return kn.spaces.NASNetSpace(**config)


#: NASNet ops without separable convolutions: cells of these build and trace fastest.
FAST_OPS = ["max_pool_3x3", "identity", "conv_1x1"]


def fast_space(**kwargs) -> kn.spaces.NASNetSpace:
    """`space()` with one block per cell of `FAST_OPS`: a trial traces several times faster.

    For tests of the search machinery (store, resume, callbacks, export), which any
    trained network shows.
    """
    return space(**{"num_blocks": 1, "ops": FAST_OPS, **kwargs})


@contextlib.contextmanager
def eagerly():
    """Runs Keras training eagerly (no tf.function tracing) within the block.

    Tracing a tiny model's train, test and predict functions takes seconds; running
    its few steps eagerly a fraction of that. For tests of the search machinery (store,
    resume, budgets, lineage, hooks, processes), which is the same in either mode; the
    tests of spaces, ops, supernets, distribution and export keep graph mode, which
    users run.
    """
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        with warnings.catch_warnings():
            # tf.data functions stay traced (cheap); TensorFlow says so per pipeline.
            warnings.filterwarnings("ignore", message="Even though the `tf.config")
            yield
    finally:
        tf.config.run_functions_eagerly(before)


def permute(cell: kn.Cell, perm) -> kn.Cell:
    """The same graph with vertex v renumbered perm[v]."""
    n = cell.num_vertices
    matrix = [[0] * n for _ in range(n)]
    ops = [None] * n
    for u in range(n):
        ops[perm[u]] = cell.ops[u]
        for w in range(n):
            matrix[perm[u]][perm[w]] = cell.matrix[u][w]
    return kn.Cell(matrix, ops)


def unwritable_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """A folder this process cannot create files in."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    # Permissions do not stop root; sysfs refuses new files to everyone.
    if not os.path.isdir("/sys"):
        pytest.skip("running as root without /sys: no folder is unwritable")
    return pathlib.Path("/sys")
