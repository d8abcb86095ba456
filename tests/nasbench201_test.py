"""Tests of the NAS-Bench-201 space: decisions, arch strings, graphs, building."""

import collections
import functools
import itertools

import keras
import keras_tuner
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.spaces.nasbench201 import EDGE_OPS, NASBench201Space

EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
NAMES = ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]


def tiny(**kwargs) -> NASBench201Space:
    config = dict(num_classes=3, input_shape=(7, 7, 2), stem_filters=4, cells_per_stage=1)
    config.update(kwargs)
    return NASBench201Space(**config)


def values_of(*ops) -> dict:
    return dict(zip(NAMES, ops, strict=True))


@functools.lru_cache(maxsize=1)
def every_cell():
    """(values, architecture) for each of the 5**6 decision combinations."""
    space = NASBench201Space()
    return [
        (values_of(*c), space.decode(values_of(*c))) for c in itertools.product(EDGE_OPS, repeat=6)
    ]


def images(n=2, shape=(7, 7, 2), seed=1):
    return np.random.default_rng(seed).random((n, *shape), dtype="float32")


def test_decisions_follow_the_benchmark_string_order():
    space = NASBench201Space()
    assert [d.name for d in space.decisions] == NAMES
    assert all(d.choices == EDGE_OPS for d in space.decisions)
    assert EDGE_OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert space.cardinality() == 15_625


def test_example_string_round_trips():
    space = NASBench201Space()
    values = space.values_from_string(EXAMPLE)
    assert values == values_of(
        "nor_conv_3x3",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "skip_connect",
    )
    assert space.to_string(values) == EXAMPLE
    assert space.key(values) == EXAMPLE
    arch = space.from_string(EXAMPLE)
    assert space.from_string(space.to_string(arch)).hash() == arch.hash()
    cell = arch.cells["cell"]
    # 4 nodes and 6 op vertices (no edge is none).
    assert sorted(cell.ops).count("add") == 2 and cell.num_vertices == 10


def test_every_cell_decodes_and_its_string_round_trips():
    space = NASBench201Space()
    cells = every_cell()
    assert len(cells) == 15_625
    strings = set()
    for values, _ in cells:
        s = space.to_string(values)
        assert space.values_from_string(s) == values
        strings.add(s)
    assert len(strings) == 15_625
    # Isomorphism (nodes 1 and 2 swapped) and pruning merge some cells.
    hashes = {arch.hash() for _, arch in cells}
    assert len(hashes) < 15_625
    # Every cell whose output nothing reaches is the all-none cell.
    disconnected = [arch for _, arch in cells if not arch.cells["cell"].is_connected]
    assert len(disconnected) > 1
    assert {arch.hash() for arch in disconnected} == {space.decode(values_of(*["none"] * 6)).hash()}


def _edge_semantics(values, x, weights):
    """The benchmark's cell computed straight from its edges, on a vector."""
    relu = functools.partial(np.maximum, 0.0)
    op_fns = {
        "skip_connect": lambda h: h,
        "nor_conv_1x1": lambda h: np.tanh(weights[0] @ relu(h)),
        "nor_conv_3x3": lambda h: np.tanh(weights[1] @ relu(h)),
        "avg_pool_3x3": lambda h: weights[2] @ h,
    }
    nodes = [x]
    for j in range(1, 4):
        total = np.zeros_like(x)
        for i in range(j):
            op = values[f"edge_{j}_{i}"]
            if op != "none":
                total = total + op_fns[op](nodes[i])
        nodes.append(total)
    return nodes[3]


def test_equal_hashes_compute_equal_functions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=8)
    weights = [rng.normal(size=(8, 8)) for _ in range(3)]
    outputs = collections.defaultdict(list)
    for values, arch in every_cell():
        outputs[arch.hash()].append(_edge_semantics(values, x, weights))
    for group in outputs.values():
        for out in group[1:]:
            np.testing.assert_allclose(out, group[0], atol=1e-9)
    # Several cells do share a hash, so the check above is not vacuous.
    assert max(len(group) for group in outputs.values()) > 10


@pytest.mark.parametrize(
    "a, b",
    [
        # Nodes 1 and 2 swapped; no edge joins them. One weighted op per cell,
        # so both models list their weights in the same order.
        (
            ("nor_conv_3x3", "avg_pool_3x3", "none", "none", "skip_connect", "avg_pool_3x3"),
            ("avg_pool_3x3", "nor_conv_3x3", "none", "none", "avg_pool_3x3", "skip_connect"),
        ),
        # Nodes 1 and 2 lead nowhere: they are pruned.
        (
            ("nor_conv_3x3", "none", "nor_conv_1x1", "avg_pool_3x3", "none", "none"),
            ("none", "none", "none", "avg_pool_3x3", "none", "none"),
        ),
    ],
)
def test_equal_hashes_build_equal_models(a, b):
    space = tiny()
    arch_a, arch_b = space.decode(values_of(*a)), space.decode(values_of(*b))
    assert arch_a.hash() == arch_b.hash()
    assert space.to_string(values_of(*a)) != space.to_string(values_of(*b))
    model_a, model_b = space.build(arch_a), space.build(arch_b)
    model_b.set_weights(model_a.get_weights())
    x = images()
    np.testing.assert_allclose(model_a(x), model_b(x), rtol=1e-5, atol=1e-6)


def test_different_strings_of_one_cell_hash_equal():
    space = NASBench201Space()
    a = space.from_string(
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    )
    b = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    )
    c = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    )
    assert a.hash() == b.hash() != c.hash()


def test_encode_decode_round_trip_for_200_architectures():
    space = NASBench201Space()
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        values = space.encode(arch)
        assert set(values) == set(NAMES) and all(isinstance(v, str) for v in values.values())
        back = space.decode(values)
        assert back.hash() == arch.hash()
        assert space.encode(back) == values
        assert space.from_string(space.to_string(arch)).hash() == arch.hash()


def test_encode_finds_every_distinct_cell():
    space = NASBench201Space()
    seen = {}
    for _, arch in every_cell():
        seen.setdefault(arch.hash(), arch)
    for arch in seen.values():
        assert space.decode(space.encode(arch)).hash() == arch.hash()


def test_encode_of_pruned_and_disconnected_cells():
    space = NASBench201Space()
    # Node 2 has no incoming edge: its outgoing edge is dropped.
    arch = space.decode(
        values_of("nor_conv_3x3", "none", "none", "none", "skip_connect", "avg_pool_3x3")
    )
    assert arch.cells["cell"].ops.count("avg_pool_3x3") == 0
    assert space.encode(arch) == values_of(
        "nor_conv_3x3", "none", "none", "none", "skip_connect", "none"
    )
    # Nothing reaches the output.
    arch = space.decode(
        values_of("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none", "none", "none")
    )
    assert not arch.cells["cell"].is_connected
    assert space.encode(arch) == values_of(*["none"] * 6)
    assert space.to_string(arch) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _cell(edges, labels):
    n = len(labels)
    matrix = [[0] * n for _ in range(n)]
    for u, w in edges:
        matrix[u][w] = 1
    return kn.Cell(matrix, labels)


@pytest.mark.parametrize(
    "arch, message",
    [
        (kn.Architecture(choices={"depth": 3}), "exactly one cell"),
        (
            kn.Architecture({"cell": _cell([(0, 2), (2, 1)], ["input_0", "output", "conv_3x3"])}),
            "'conv_3x3' is not one of",
        ),
        (
            kn.Architecture({"cell": _cell([(0, 1)], ["input_0", "output"])}),
            "leads straight to a node",
        ),
        (
            kn.Architecture(
                {
                    "cell": _cell(
                        [(0, 3), (1, 3), (3, 2)], ["input_0", "input_1", "output", "skip_connect"]
                    )
                }
            ),
            "one input 'input_0'",
        ),
        (
            kn.Architecture(
                {
                    "cell": _cell(
                        [(0, 2), (2, 1), (0, 3), (3, 1)],
                        ["input_0", "output", "skip_connect", "nor_conv_1x1"],
                    )
                }
            ),
            "two ops join node 0 to node 3",
        ),
        (
            kn.Architecture(
                {
                    "cell": _cell(
                        [(0, 2), (2, 3), (3, 1)],
                        ["input_0", "output", "nor_conv_1x1", "avg_pool_3x3"],
                    )
                }
            ),
            "does not join an earlier node to a later one",
        ),
    ],
)
def test_encode_refuses_architectures_of_other_spaces(arch, message):
    with pytest.raises(kn.OutOfSpaceError, match=message):
        NASBench201Space().encode(arch)


def test_encode_refuses_three_intermediate_nodes():
    labels = ["input_0", "output"] + ["add"] * 3 + ["skip_connect"] * 4
    # input -> op -> add -> op -> add -> op -> add -> op -> output
    edges = [(0, 5), (5, 2), (2, 6), (6, 3), (3, 7), (7, 4), (4, 8), (8, 1)]
    arch = kn.Architecture({"cell": _cell(edges, labels)})
    with pytest.raises(kn.OutOfSpaceError, match="3 'add' vertices"):
        NASBench201Space().encode(arch)


def test_nasnet_architectures_are_refused():
    nasnet = kn.spaces.NASNetSpace(num_blocks=1)
    with pytest.raises(kn.OutOfSpaceError, match="exactly one cell"):
        NASBench201Space().encode(nasnet.sample(np.random.default_rng(0)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", r"Received 2 part\(s\)"),
        (EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"), "Unknown op 'max_pool_3x3'"),
        (EXAMPLE.replace("|+|nor_conv_3x3~0|avg", "|+|nor_conv_3x3~0|none~0|avg"), "exactly 2"),
        (EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3~0"), "must come from node 1"),
        (EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3"), "'op~source'"),
        (EXAMPLE[1:], "start and end with '|'"),
        ("", "nodes 1, 2"),
        ("|nor_conv_3x3~0|+||+|none~0|none~1|none~2|", "exactly 2"),
    ],
)
def test_bad_strings_are_refused(text, message):
    space = NASBench201Space()
    with pytest.raises(ValueError, match=message):
        space.from_string(text)


def test_to_string_refuses_bad_values():
    space = NASBench201Space()
    with pytest.raises(kn.OutOfSpaceError, match="Missing a value for decision 'edge_3_2'"):
        space.to_string({name: "none" for name in NAMES[:5]})
    with pytest.raises(kn.OutOfSpaceError, match="cannot take 'sep_conv_3x3'"):
        space.to_string(values_of(*["none"] * 5, "sep_conv_3x3"))
    with pytest.raises(ValueError, match="takes an Architecture or a dict"):
        space.to_string(EXAMPLE)
    with pytest.raises(ValueError, match="must be a str"):
        space.from_string(None)


@pytest.mark.parametrize("op", EDGE_OPS[1:])
def test_every_op_builds_and_runs(op):
    # Odd image size: the reductions must agree on the rounded-up resolution.
    space = tiny()
    model = space.build(space.decode(values_of(*[op] * 6)))
    out = np.asarray(model(images()))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert model.loss == "sparse_categorical_crossentropy"
    # Every layer is a built-in Keras layer.
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)


def test_a_disconnected_cell_builds_and_outputs_a_softmax():
    space = tiny()
    arch = space.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert not arch.cells["cell"].is_connected
    model = space.build(arch)
    out = np.asarray(model(images()))
    assert out.shape == (2, 3) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_the_skeleton_matches_the_benchmark_parameter_counts():
    # Trainable parameters of the benchmark's CIFAR-10 networks (C=16, N=5),
    # counted by hand from its TinyNetwork: no cell weights, and six 3x3
    # ReLU-Conv-BN per cell.
    space = NASBench201Space(num_classes=10, input_shape=(32, 32, 3))

    def trainable(text):
        model = space.build(space.from_string(text))
        return sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    assert trainable("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == 73_306
    all_conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+" + (
        "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert trainable(all_conv) == 1_531_546


def test_export_and_reload_without_custom_objects(tmp_path):
    space = tiny()
    model = space.build(space.from_string(EXAMPLE))
    x, y = images(8), np.arange(8) % 3
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "x.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(x, training=False), model(x, training=False), rtol=1e-5)


def test_build_from_keras_tuner_hyperparameters():
    space = tiny()
    hp = keras_tuner.HyperParameters()
    hp.values.update(space.values_from_string(EXAMPLE))
    model = space.build(hp)
    assert model.name.endswith(space.from_string(EXAMPLE).hash()[:8])
    assert {h.name for h in hp.space} == set(NAMES)


def test_config_and_arguments():
    space = tiny(learning_rate=0.01)
    config = space.get_config()
    assert config["class"] == "NASBench201Space"
    assert (config["stem_filters"], config["cells_per_stage"], config["learning_rate"]) == (
        4,
        1,
        0.01,
    )
    assert config["input_shape"] == [7, 7, 2]
    with pytest.raises(ValueError, match="stem_filters must be an integer >= 1"):
        NASBench201Space(stem_filters=0)
    with pytest.raises(ValueError, match="cells_per_stage"):
        NASBench201Space(cells_per_stage=2.5)
    with pytest.raises(ValueError, match="learning_rate"):
        NASBench201Space(learning_rate=0)
    with pytest.raises(ValueError, match="needs images"):
        NASBench201Space(input_shape=(64,))
    with pytest.raises(ValueError, match="input_shape and num_classes"):
        NASBench201Space().build(NASBench201Space().from_string(EXAMPLE))


def test_mutate_stays_in_the_space():
    space = NASBench201Space()
    rng = np.random.default_rng(3)
    arch = space.from_string(EXAMPLE)
    changed = 0
    for _ in range(30):
        child = space.mutate(arch, rng)
        assert space.decode(space.encode(child)).hash() == child.hash()
        changed += child.hash() != arch.hash()
        arch = child
    # Mutating an edge of a pruned part leaves the hash alone, so not every step
    # changes it.
    assert changed >= 5
