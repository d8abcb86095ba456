"""Tests of the NAS-Bench-101 space: decisions, benchmark hash, building, tfrecord reader."""

import base64
import hashlib
import json
import struct

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import kerasnas as kn
from kerasnas.spaces.nasbench101 import (
    MAX_EDGES,
    NASBENCH_OPS,
    NASBench101Space,
    compute_vertex_channels,
    read_nasbench_tfrecord,
)

CONV3X3, CONV1X1, MAXPOOL3X3 = NASBENCH_OPS

# The Inception-like cell of the NAS-Bench-101 README and colab (NASBench.ipynb).
INCEPTION_MATRIX = [
    [0, 1, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
INCEPTION_OPS = ["input", CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, "output"]
# The dataset's stored (isomorphic) form of that cell, as the colab's query prints it.
INCEPTION_STORED_MATRIX = [
    [0, 1, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
INCEPTION_STORED_OPS = ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV3X3, "output"]
# Its module hash: what the independent implementation below computes, and the
# hash that google-research/unified_functional_hashing's NAS-Bench tests
# (nasbench/python/evaluator_test.py) give this very spec.
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"


# -- An independent, literal implementation of the benchmark's hashing --------
def reference_hash(matrix, ops):
    """ModelSpec(matrix, ops).hash_spec(NASBENCH_OPS), written from the algorithm.

    Prunes in numpy (vertices reachable from vertex 0 and reaching the last
    vertex), labels input -1, output -2 and ops by their canonical index, then
    iterates md5 hashes of (out-degree, in-degree, label) with the sorted
    in- and out-neighbour hashes, once per vertex.
    """
    m = np.array(matrix, dtype=np.int64)
    n = len(m)
    forward = np.zeros(n, bool)
    forward[0] = True
    backward = np.zeros(n, bool)
    backward[n - 1] = True
    for _ in range(n):
        forward |= m[forward].sum(axis=0) > 0
        backward |= m[:, backward].sum(axis=1) > 0
    keep = np.flatnonzero(forward & backward)
    assert len(keep) >= 2, "disconnected spec"
    m = m[np.ix_(keep, keep)]
    labels = [-1] + [NASBENCH_OPS.index(ops[v]) for v in keep[1:-1]] + [-2]
    n = len(m)
    out_deg, in_deg = m.sum(axis=1).tolist(), m.sum(axis=0).tolist()
    h = [
        hashlib.md5(str((out_deg[v], in_deg[v], labels[v])).encode()).hexdigest() for v in range(n)
    ]
    for _ in range(n):
        h = [
            hashlib.md5(
                (
                    "".join(sorted(h[u] for u in range(n) if m[u, v]))
                    + "|"
                    + "".join(sorted(h[w] for w in range(n) if m[v, w]))
                    + "|"
                    + h[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(h)).encode()).hexdigest()


def values_to_spec(values):
    matrix = np.zeros((7, 7), int)
    for i in range(7):
        for j in range(i + 1, 7):
            matrix[i, j] = values[f"edge_{i}_{j}"]
    ops = ["input"] + [values[f"op_{v}"] for v in range(1, 6)] + ["output"]
    return matrix, ops


def relabel(matrix, ops, rng):
    """The same cell with its intermediate vertices renumbered at random."""
    n = len(ops)
    perm = [0] + list(1 + rng.permutation(n - 2)) + [n - 1]  # old vertex -> new vertex
    new_matrix = [[0] * n for _ in range(n)]
    new_ops = [None] * n
    for u in range(n):
        new_ops[perm[u]] = ops[u]
        for w in range(n):
            new_matrix[perm[u]][perm[w]] = matrix[u][w]
    return new_matrix, new_ops


# -- Decisions, hashing -----------------------------------------------------------
def test_decisions_are_21_edge_bits_then_5_ops():
    space = NASBench101Space()
    names = [d.name for d in space.decisions]
    assert len(names) == 26
    assert names[:3] == ["edge_0_1", "edge_0_2", "edge_0_3"] and names[20] == "edge_5_6"
    assert names[21:] == ["op_1", "op_2", "op_3", "op_4", "op_5"]
    assert space.decision("edge_2_4").choices == (0, 1)
    assert space.decision("op_3").choices == NASBENCH_OPS
    assert space.cardinality() == 2**21 * 3**5
    with pytest.raises(ValueError, match="more than the 100000"):
        next(space.enumerate())


def test_hash_of_the_inception_cell_is_the_benchmarks():
    space = NASBench101Space()
    arch = space.from_spec(INCEPTION_MATRIX, INCEPTION_OPS)
    assert reference_hash(INCEPTION_MATRIX, INCEPTION_OPS) == INCEPTION_HASH
    assert space.nasbench_hash(arch) == INCEPTION_HASH
    # The dataset stores an isomorphic numbering; same hash, same architecture.
    stored = space.from_spec(INCEPTION_STORED_MATRIX, INCEPTION_STORED_OPS)
    assert space.nasbench_hash(stored) == INCEPTION_HASH
    assert stored == arch
    values = space.encode(arch)
    assert space.key(values) == space.nasbench_hash(values) == INCEPTION_HASH
    # The kerasnas hash labels vertices by op name, so it differs from the benchmark's.
    assert arch.hash() != INCEPTION_HASH


def test_nasbench_hash_matches_the_reference_on_raw_decision_values():
    space = NASBench101Space()
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 60:
        values = {d.name: d.choices[rng.integers(len(d.choices))] for d in space.decisions}
        try:
            key = space.key(values)
        except kn.OutOfSpaceError:
            continue
        assert key == reference_hash(*values_to_spec(values))
        checked += 1


def test_hash_is_invariant_to_relabelling_the_intermediate_vertices():
    space = NASBench101Space()
    rng = np.random.default_rng(1)
    for _ in range(30):
        arch = space.sample(rng)
        matrix, ops = space.to_spec(arch)
        for _ in range(5):
            p_matrix, p_ops = relabel(matrix, ops, rng)
            relabelled = kn.Architecture(cells={"cell": kn.Cell(p_matrix, p_ops)})
            assert space.nasbench_hash(relabelled) == space.nasbench_hash(arch)
            assert relabelled.hash() == arch.hash()
            assert space.decode(space.encode(relabelled)).hash() == arch.hash()
            assert reference_hash(p_matrix, p_ops) == space.nasbench_hash(arch)


def test_hash_tells_apart_cells_that_differ_only_in_an_op_or_edge_direction():
    space = NASBench101Space()
    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    a = space.from_spec(chain, ["input", CONV3X3, CONV1X1, "output"])
    b = space.from_spec(chain, ["input", CONV1X1, CONV3X3, "output"])
    assert space.nasbench_hash(a) != space.nasbench_hash(b)
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    c = space.from_spec(diamond, ["input", CONV3X3, CONV1X1, "output"])
    d = space.from_spec(diamond, ["input", CONV1X1, CONV3X3, "output"])
    assert space.nasbench_hash(c) == space.nasbench_hash(d)


# -- Pruning and validity -----------------------------------------------------------
def test_vertices_off_the_input_output_paths_are_pruned():
    space = NASBench101Space()
    # Vertex 2 hangs off the input (no way to the output); vertex 3 is an island
    # feeding vertex 4, which the input cannot reach.
    matrix = [
        [0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    ops = ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV1X1, MAXPOOL3X3, "output"]
    arch = space.from_spec(matrix, ops)
    assert space.to_spec(arch) == ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", CONV3X3, "output"])
    assert space.nasbench_hash(arch) == reference_hash(matrix, ops)
    # Encoding pads back to 7 vertices with unconnected ones.
    values = space.encode(arch)
    assert sum(values[d.name] for d in space.decisions if d.name.startswith("edge")) == 2
    assert values["edge_0_1"] == values["edge_1_6"] == 1
    # The smallest cell: the input straight to the output.
    direct = space.decode(dict(values, edge_0_1=0, edge_1_6=0, edge_0_6=1))
    assert space.to_spec(direct) == ([[0, 1], [0, 0]], ["input", "output"])


def test_disconnected_cells_are_out_of_the_space():
    space = NASBench101Space()
    values = space.encode(space.from_spec(INCEPTION_MATRIX, INCEPTION_OPS))
    cut = dict(values, edge_1_6=0, edge_2_6=0, edge_4_6=0, edge_5_6=0)
    with pytest.raises(kn.OutOfSpaceError, match="disconnected"):
        space.decode(cut)
    with pytest.raises(kn.OutOfSpaceError, match="disconnected"):
        space.from_spec(
            [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
            ["input", CONV3X3, CONV3X3, "output"],
        )


def test_cells_with_more_than_9_edges_after_pruning_are_out_of_the_space():
    space = NASBench101Space()
    # A chain 0-1-2-3-4-5-6 (6 edges) plus 4 skips: 10 edges, all on paths.
    values = {d.name: d.choices[0] for d in space.decisions}
    for i in range(6):
        values[f"edge_{i}_{i + 1}"] = 1
    for i, j in ((0, 2), (0, 3), (1, 3), (2, 4)):
        values[f"edge_{i}_{j}"] = 1
    with pytest.raises(kn.OutOfSpaceError, match=f"10 edges after pruning.*more than {MAX_EDGES}"):
        space.decode(values)
    # With 9 it is in the space.
    values["edge_2_4"] = 0
    assert space.decode(values)
    # 10 edges before pruning but 9 after (a dangling vertex) is fine too.
    over = {d.name: d.choices[0] for d in space.decisions}
    for i in range(5):
        over[f"edge_{i}_{i + 1}"] = 1
    over.update(edge_4_6=1, edge_0_2=1, edge_0_3=1, edge_1_3=1)  # 9 edges on paths
    over["edge_0_5"] = 1  # vertex 5 has no way to the output: pruned with its edges
    arch = space.decode(over)
    assert sum(map(sum, space.to_spec(arch)[0])) == 8


def test_values_and_architectures_outside_the_space_are_refused():
    space = NASBench101Space()
    values = space.encode(space.sample(np.random.default_rng(0)))
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 'conv5x5'"):
        space.decode(dict(values, op_2="conv5x5"))
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 2"):
        space.decode(dict(values, edge_0_1=2))
    missing = dict(values)
    del missing["edge_3_4"]
    with pytest.raises(kn.OutOfSpaceError, match="Missing"):
        space.decode(missing)
    nasnet_arch = kn.spaces.NASNetSpace(num_blocks=2).sample(np.random.default_rng(0))
    with pytest.raises(kn.OutOfSpaceError, match="exactly one cell"):
        space.encode(nasnet_arch)
    eight = [[int(j == i + 1) for j in range(8)] for i in range(8)]
    with pytest.raises(kn.OutOfSpaceError, match="8 vertices"):
        space.from_spec(eight, ["input"] + [CONV3X3] * 6 + ["output"])
    with pytest.raises(kn.OutOfSpaceError, match=r"Unknown NAS-Bench-101 operation\(s\) \['sep'\]"):
        space.from_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "sep", "output"])


# -- Encoding, sampling, mutation --------------------------------------------------
def test_encode_decode_round_trip_for_100_architectures():
    space = NASBench101Space()
    rng = np.random.default_rng(2)
    for _ in range(100):
        arch = space.sample(rng)
        values = space.encode(arch)
        assert list(values) == [d.name for d in space.decisions]
        assert all(type(v) in (int, str) for v in values.values())
        back = space.decode(values)
        assert back.hash() == arch.hash()
        assert space.nasbench_hash(back) == space.nasbench_hash(arch)
        assert space.encode(back) == values
        # Through JSON, as trials store them.
        assert kn.Architecture.from_json(arch.to_json()) == arch


def test_sample_and_mutate_always_give_valid_architectures():
    space = NASBench101Space()
    rng = np.random.default_rng(3)
    hashes = set()
    for _ in range(100):
        arch = space.sample(rng)
        matrix, ops = space.to_spec(arch)
        assert len(ops) <= 7 and sum(map(sum, matrix)) <= 9
        hashes.add(space.nasbench_hash(arch))
        for _ in range(3):
            child = space.mutate(arch, rng)
            matrix, ops = space.to_spec(child)
            assert len(ops) <= 7 and sum(map(sum, matrix)) <= 9
            assert space.nasbench_hash(child) != space.nasbench_hash(arch)
            arch = child
    # Uniform draws favour small cells (as the benchmark's own random search
    # does): about 1 in 10 is the bare input -> output cell.
    assert len(hashes) > 50
    with pytest.raises(ValueError, match="mutation_rate"):
        space.mutate(arch, rng, mutation_rate=0)


# -- Building ------------------------------------------------------------------------
def test_vertex_channels_follow_the_benchmarks_rule():
    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert compute_vertex_channels(8, 16, chain) == [8, 16, 16, 16]
    assert compute_vertex_channels(16, 8, chain) == [16, 8, 8, 8]
    assert compute_vertex_channels(1, 5, [[0, 1], [0, 0]]) == [1, 5]
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert compute_vertex_channels(8, 15, diamond) == [8, 8, 7, 15]
    fan = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert compute_vertex_channels(8, 8, fan) == [8, 3, 3, 2, 8]
    # Vertex 1 feeds vertices 2 and 3, so it takes the larger of their counts.
    branch = [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert compute_vertex_channels(8, 9, branch) == [8, 5, 5, 4, 9]
    with pytest.raises(ValueError, match="Cannot split 2 output channels among the 3"):
        compute_vertex_channels(8, 2, fan)


def test_full_size_model_has_the_benchmarks_parameter_count():
    # The colab's query of the Inception-like cell reports 2,694,282 trainable
    # parameters for the CIFAR-10 network (128 stem channels, 3 x 3 cells).
    space = NASBench101Space(num_classes=10, input_shape=(32, 32, 3))
    model = space.build(space.from_spec(INCEPTION_MATRIX, INCEPTION_OPS))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 2_694_282


# Vertices 2, 3 and 4 feed the output (8 channels: 3 + 3 + 2), vertex 1 feeds
# vertices 2 and 4 (3 channels, cut to 2 for vertex 4), the input also feeds the
# output directly (a projection is added), and vertex 5 is pruned.
TRUNCATING_MATRIX = [
    [0, 1, 0, 1, 0, 0, 1],
    [0, 0, 1, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
]
TRUNCATING_OPS = ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, "output"]


def tiny_space(**kwargs):
    config = dict(
        num_classes=3, input_shape=(8, 8, 3), stem_filters=8, num_stacks=2, cells_per_stack=1
    )
    config.update(kwargs)
    return NASBench101Space(**config)


def test_tiny_model_runs_and_exports_without_custom_objects(tmp_path):
    space = tiny_space()
    arch = space.from_spec(TRUNCATING_MATRIX, TRUNCATING_OPS)
    model = space.build(arch)
    assert model.name.endswith(arch.hash()[:8])
    assert model.optimizer is not None and model.loss == "sparse_categorical_crossentropy"
    assert {type(layer).__module__.split(".")[1] for layer in model.layers} == {"src"}
    assert any(isinstance(layer, keras.layers.Cropping3D) for layer in model.layers)
    rng = np.random.default_rng(4)
    history = model.fit(
        rng.random((8, 8, 8, 3), dtype="float32"), np.arange(8) % 3, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    x = rng.random((2, 8, 8, 3), dtype="float32")
    out = np.asarray(model(x, training=False))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), out, rtol=1e-5, atol=1e-6)


def test_tiny_models_of_sampled_and_extreme_cells_build():
    space = tiny_space(num_stacks=1, stem_filters=4)
    rng = np.random.default_rng(5)
    x = np.zeros((1, 8, 8, 3), "float32")
    direct = space.from_spec([[0, 1], [0, 0]], ["input", "output"])
    # Four vertices feed the output (the most 9 edges allow): one channel each.
    four_feeders = [[0, 1, 1, 1, 1, 0]] + [[0] * 5 + [1] for _ in range(4)] + [[0] * 6]
    wide = space.from_spec(four_feeders, ["input"] + [MAXPOOL3X3, CONV3X3] * 2 + ["output"])
    for arch in [direct, wide] + [space.sample(rng) for _ in range(3)]:
        assert space.build(arch)(x).shape == (1, 3)


def test_build_from_keras_tuner_hyperparameters():
    space = tiny_space()
    arch = space.sample(np.random.default_rng(7))
    hp = keras_tuner.HyperParameters()
    hp.values.update(space.encode(arch))
    model = space.build(hp)
    assert model.name.endswith(arch.hash()[:8])
    assert {h.name for h in hp.space} == {d.name for d in space.decisions}


def test_a_short_search_trains_nasbench_cells(tmp_path):
    from tests import tiny

    (x, y), (xv, yv) = tiny.digits(120, 40)
    space = NASBench101Space(stem_filters=8, num_stacks=2, cells_per_stack=1, learning_rate=0.01)
    search = kn.Search(space, "random", max_trials=1, seed=0, directory=tmp_path, verbose=0)
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=40)
    assert space.input_shape == (8, 8, 1) and space.num_classes == 10
    assert search.best_model().output_shape == (None, 10)


def test_space_arguments_are_checked():
    with pytest.raises(ValueError, match="stem_filters must be an integer >= 4"):
        NASBench101Space(stem_filters=3)
    with pytest.raises(ValueError, match="num_stacks"):
        NASBench101Space(num_stacks=0)
    with pytest.raises(ValueError, match="cells_per_stack"):
        NASBench101Space(cells_per_stack=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        NASBench101Space(learning_rate=0)
    with pytest.raises(ValueError, match="needs images"):
        NASBench101Space(input_shape=(64,))
    space = tiny_space()
    assert space.get_config() == {
        "class": "NASBench101Space",
        "num_classes": 3,
        "input_shape": [8, 8, 3],
        "stem_filters": 8,
        "num_stacks": 2,
        "cells_per_stack": 1,
        "learning_rate": 1e-3,
    }


# -- The tfrecord reader ------------------------------------------------------------
def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number, wire_type, payload):
    return _varint(number << 3 | wire_type) + payload


def _double(number, value):
    return _field(number, 1, struct.pack("<d", value))


def _nested(number, data):
    return _field(number, 2, _varint(len(data)) + data)


def encode_metrics(trainable_parameters, total_time, evaluations):
    """A ModelMetrics message in protobuf wire format (fields from model_metrics.proto)."""
    data = b""
    for ev in evaluations:
        inner = b"".join(_double(i, ev[i - 1]) for i in range(1, 6))
        if len(ev) > 5:
            inner += _nested(6, ev[5].encode())
        data += _nested(1, inner)
    data += _field(2, 0, _varint(trainable_parameters))
    data += _double(3, total_time)
    return data


def write_tfrecord(path, rows):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            writer.write(json.dumps(row).encode("utf-8"))


def test_tfrecord_reader_round_trip(tmp_path):
    space = NASBench101Space()
    stored = space.from_spec(INCEPTION_STORED_MATRIX, INCEPTION_STORED_OPS)
    adjacency = "".join(str(v) for row in INCEPTION_STORED_MATRIX for v in row)
    rows = []
    for run in range(3):
        evaluations = [
            (0.0, 0.0, 0.1, 0.1, 0.1),
            (54.0, 577.5 + run, 0.9, 0.88, 0.87),
            (108.0, 1155.85302734375 + run, 1.0, 0.9376001358032227, 0.9311898946762085, "ckpt"),
        ]
        metrics = encode_metrics(2694282, 1300.5, evaluations)
        rows.append(
            [
                INCEPTION_HASH,
                108,
                adjacency,
                ",".join(INCEPTION_STORED_OPS),
                base64.b64encode(metrics).decode("ascii"),
            ]
        )
    small = [[0, 1], [0, 0]]
    rows.append(
        [
            "abc",
            4,
            "0100",
            "input,output",
            base64.b64encode(encode_metrics(-7, 0.5, [(4.0, 3.0, 0.5, 0.25, 0.125)])).decode(),
        ]
    )
    path = tmp_path / "nasbench_test.tfrecord"
    write_tfrecord(path, rows)

    records = list(read_nasbench_tfrecord(path))
    assert len(records) == 4
    first = records[0]
    assert first.module_hash == INCEPTION_HASH and first.epochs == 108
    assert [list(r) for r in first.matrix] == INCEPTION_STORED_MATRIX
    assert list(first.ops) == INCEPTION_STORED_OPS
    assert first.trainable_parameters == 2694282
    assert first.total_time == 1300.5
    assert len(first.evaluations) == 3
    assert first.evaluations[1].current_epoch == 54.0
    assert first.evaluations[1].training_time == 577.5
    assert first.evaluations[0].checkpoint_path == ""
    assert first.final.checkpoint_path == "ckpt"
    assert first.training_time == 1155.85302734375
    assert first.train_accuracy == 1.0
    assert first.validation_accuracy == 0.9376001358032227
    assert first.test_accuracy == 0.9311898946762085
    assert records[2].training_time == 1157.85302734375
    # A record's spec gives back its architecture, whose hash is the record's key.
    arch = space.from_spec(first.matrix, first.ops)
    assert arch == stored and space.nasbench_hash(arch) == first.module_hash
    last = records[3]
    assert last.epochs == 4 and [list(r) for r in last.matrix] == small
    assert last.ops == ("input", "output") and last.trainable_parameters == -7
    assert last.final.test_accuracy == 0.125

    assert [r.module_hash for r in read_nasbench_tfrecord(path, max_records=2)] == [
        INCEPTION_HASH
    ] * 2
    assert list(read_nasbench_tfrecord(path, max_records=0)) == []


def test_tfrecord_reader_agrees_with_the_protobuf_library(tmp_path):
    # Encode with the real protobuf runtime, from a descriptor built here with
    # model_metrics.proto's field numbers and types (no generated code).
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="mm_test.proto", package="nbtest")
    proto.syntax = "proto2"
    f = descriptor_pb2.FieldDescriptorProto
    ev = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(
        [
            "current_epoch",
            "training_time",
            "train_accuracy",
            "validation_accuracy",
            "test_accuracy",
        ],
        1,
    ):
        ev.field.add(name=name, number=number, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    mm = proto.message_type.add(name="ModelMetrics")
    mm.field.add(
        name="evaluation_data",
        number=1,
        type=f.TYPE_MESSAGE,
        type_name=".nbtest.EvaluationData",
        label=f.LABEL_REPEATED,
    )
    mm.field.add(name="trainable_parameters", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    ModelMetrics = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("nbtest.ModelMetrics")
    )

    message = ModelMetrics(trainable_parameters=-123456, total_time=42.25)
    message.evaluation_data.add(current_epoch=0.0)
    message.evaluation_data.add(training_time=9.5, validation_accuracy=0.75, checkpoint_path="a/b")
    raw = base64.b64encode(message.SerializeToString()).decode()
    path = tmp_path / "pb.tfrecord"
    write_tfrecord(path, [["h", 12, "0100", "input,output", raw]])
    (record,) = read_nasbench_tfrecord(path)
    assert record.trainable_parameters == -123456 and record.total_time == 42.25
    assert len(record.evaluations) == 2
    assert record.final.training_time == 9.5 and record.final.validation_accuracy == 0.75
    assert record.final.train_accuracy == 0.0 and record.final.checkpoint_path == "a/b"


def test_tfrecord_reader_reports_bad_records(tmp_path):
    path = tmp_path / "bad.tfrecord"
    write_tfrecord(path, [["h", 108, "010", "input,output", ""]])
    with pytest.raises(ValueError, match="Record 0 .* not a NAS-Bench-101 record: .*square"):
        list(read_nasbench_tfrecord(path))
    truncated = base64.b64encode(encode_metrics(5, 1.0, [(1.0, 2.0, 3.0, 4.0, 5.0)])[:-3]).decode()
    write_tfrecord(path, [["h", 108, "0100", "input,output", truncated]])
    with pytest.raises(ValueError, match="truncated"):
        list(read_nasbench_tfrecord(path))
    write_tfrecord(path, [{"not": "a list"}])
    with pytest.raises(ValueError, match="list of 5"):
        list(read_nasbench_tfrecord(path))
    # Arguments are checked on the call, before any record is read.
    with pytest.raises(FileNotFoundError, match="nasbench_only108"):
        read_nasbench_tfrecord(tmp_path / "missing.tfrecord")
    with pytest.raises(ValueError, match="max_records"):
        read_nasbench_tfrecord(path, max_records=-1)
    # A field with the wrong wire type (evaluation_data as a double).
    wrong = base64.b64encode(_double(1, 3.0)).decode()
    write_tfrecord(path, [["h", 108, "0100", "input,output", wrong]])
    with pytest.raises(ValueError, match="length-delimited"):
        list(read_nasbench_tfrecord(path))
