"""Tests of the Architecture value: hashing, pruning, JSON, plotting."""

import itertools
import json
import shutil

import numpy as np
import pytest

import kerasnas as kn
from kerasnas.architecture import Cell, graph_hash
from tests.tiny import permute

SPACE = kn.spaces.NASNetSpace(num_blocks=4)


def test_isomorphic_cells_hash_equal():
    rng = np.random.default_rng(1)
    for _ in range(50):
        arch = SPACE.sample(rng)
        cells = {}
        for name, cell in arch.cells.items():
            relabelled = permute(cell, rng.permutation(cell.num_vertices))
            assert relabelled.hash() == cell.hash()
            cells[name] = relabelled
        assert kn.Architecture(cells).hash() == arch.hash()
        assert kn.Architecture(cells) == arch


def test_swapping_a_blocks_two_branches_is_the_same_cell():
    values = SPACE.encode(SPACE.sample(np.random.default_rng(3)))
    swapped = dict(values)
    for field in ("input", "op"):
        swapped[f"normal/block_0/{field}_a"] = values[f"normal/block_0/{field}_b"]
        swapped[f"normal/block_0/{field}_b"] = values[f"normal/block_0/{field}_a"]
    assert SPACE.decode(swapped).hash() == SPACE.decode(values).hash()


def brute_force_canonical(cell: Cell):
    """The smallest relabelling of a small cell: equal exactly for isomorphic cells."""
    n = cell.num_vertices
    best = None
    for perm in itertools.permutations(range(n)):
        relabelled = permute(cell, perm)
        key = (relabelled.ops, relabelled.matrix)
        best = key if best is None or key < best else best
    return best


def test_hash_equal_exactly_for_isomorphic_cells():
    # Every cell of a small space, compared with a brute-force isomorphism test.
    space = kn.spaces.NASNetSpace(num_blocks=1, ops=["conv_1x1", "max_pool_3x3", "identity"])
    cells = {}
    for arch in space.enumerate():
        cell = arch.cells["normal"]
        cells[str(cell.to_config())] = cell
    canon = {key: brute_force_canonical(cell) for key, cell in cells.items()}
    keys = sorted(cells)
    assert len(keys) == 36
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            same_graph = canon[a] == canon[b]
            assert (cells[a].hash() == cells[b].hash()) == same_graph, (a, b)
    # (a, op1, b, op2) and (b, op2, a, op1) are the same cell: 36 orderings, 21 cells.
    assert len({cell.hash() for cell in cells.values()}) == 21


def test_hash_separates_graphs_that_differ_only_in_wiring():
    # Two chains with the same ops in a different order.
    a = Cell(
        [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input_0", "conv_3x3", "max_pool_3x3", "output"],
    )
    b = Cell(
        [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input_0", "max_pool_3x3", "conv_3x3", "output"],
    )
    assert a.hash() != b.hash()
    # And a parallel version of the same ops.
    c = Cell(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input_0", "conv_3x3", "max_pool_3x3", "output"],
    )
    assert c.hash() not in (a.hash(), b.hash())


def test_graph_hash_matches_nasbench_fingerprint_format():
    matrix = [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    h = graph_hash(matrix, [-1, 0, -2])
    assert len(h) == 32 and int(h, 16) >= 0
    assert graph_hash(matrix, [-1, 0, -2]) == h
    assert graph_hash(matrix, [-1, 1, -2]) != h


def test_vertices_that_cannot_reach_the_output_are_dropped():
    # Vertex 2 (a conv) leads nowhere; vertex 3 has no input.
    matrix = [
        [0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    cell = Cell(matrix, ["input_0", "conv_3x3", "conv_1x1", "max_pool_3x3", "output"])
    assert cell.ops == ("input_0", "conv_3x3", "output")
    assert cell.matrix == ((0, 1, 0), (0, 0, 1), (0, 0, 0))
    assert (
        cell.hash()
        == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input_0", "conv_3x3", "output"]).hash()
    )


def test_a_cell_whose_output_is_unreachable_keeps_only_inputs_and_output():
    cell = Cell([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input_0", "conv_3x3", "output"])
    assert cell.ops == ("input_0", "output") and cell.matrix == ((0, 0), (0, 0))
    assert not cell.is_connected
    assert Cell([[0, 1], [0, 0]], ["input_0", "output"]).is_connected


def test_json_round_trip_is_exact():
    rng = np.random.default_rng(4)
    for _ in range(20):
        arch = SPACE.sample(rng)
        text = arch.to_json()
        back = kn.Architecture.from_json(text)
        assert back.to_json() == text
        assert back.hash() == arch.hash()
        assert back.cells["normal"].matrix == arch.cells["normal"].matrix
    with_choices = kn.Architecture(choices={"depth": 3, "act": "relu", "p": 0.5, "bn": True})
    back = kn.Architecture.from_json(with_choices.to_json())
    assert back.choices == {"depth": 3, "act": "relu", "p": 0.5, "bn": True}
    assert json.loads(back.to_json()) == json.loads(with_choices.to_json())


def test_choices_take_part_in_the_hash():
    assert (
        kn.Architecture(choices={"depth": 3}).hash() != kn.Architecture(choices={"depth": 4}).hash()
    )


@pytest.mark.parametrize(
    "matrix, ops, message",
    [
        ([[0, 1], [1, 0]], ["input_0", "output"], "cycle"),
        ([[0, 1], [0, 0]], ["input_0", "conv"], "output"),
        ([[0, 1], [0, 0]], ["conv", "output"], "input"),
        ([[0, 1, 0], [0, 0, 1]], ["input_0", "conv", "output"], "square"),
        ([[0, 2], [0, 0]], ["input_0", "output"], "0 and 1"),
    ],
)
def test_invalid_cells_are_refused(matrix, ops, message):
    with pytest.raises(ValueError, match=message):
        Cell(matrix, ops)


def test_bad_json_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="Not an architecture JSON"):
        kn.Architecture.from_json("{nope")
    with pytest.raises(ValueError, match="Unknown keys"):
        kn.Architecture.from_json('{"cells": {}, "layers": 3}')
    with pytest.raises(ValueError, match="bool, int, float or str"):
        kn.Architecture(choices={"depth": [1, 2]})


def test_plot_with_matplotlib(tmp_path, monkeypatch):
    arch = SPACE.sample(np.random.default_rng(5))
    monkeypatch.setattr(shutil, "which", lambda name: None)  # as if graphviz were absent
    png = arch.plot(tmp_path / "arch.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = arch.plot(tmp_path / "arch.svg")
    with open(svg) as f:
        text = f.read()
    assert "<svg" in text
    with pytest.raises(ValueError, match="png"):
        arch.plot(tmp_path / "arch.gif")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_plot_with_graphviz(tmp_path):
    arch = SPACE.sample(np.random.default_rng(6))
    svg = arch.plot(tmp_path / "arch.svg")
    with open(svg) as f:
        text = f.read()
    assert "normal cell" in text and "reduction cell" in text
