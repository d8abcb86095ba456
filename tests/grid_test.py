"""Tests of grid search (`strategy="grid"`): exhaustive, ordered, deduplicated, resumable."""

import itertools
import json

import pytest

import kerasnas as kn
from kerasnas._io import read_json
from tests import tiny
from tests.local_test import hand_table, keys_of, search, six_layers


def test_grid_enumerates_every_architecture_once_in_order_then_stops(tmp_path, capsys):
    space = kn.spaces.MacroSpace(stages=(1, 1, 1))  # 27 architectures, keys "000".."222"
    s = kn.Search(space, "grid", evaluator=hand_table(space), max_trials=100, seed=0,
                  directory=str(tmp_path), project_name="p")  # fmt: skip
    s.fit()
    keys = keys_of(space, s)
    assert keys == ["".join(p) for p in itertools.product("012", repeat=3)]
    assert "search stopped: the grid is done: all 27 distinct architectures have been tried" in (
        capsys.readouterr().out
    )
    assert s.oracle.stop_reason.startswith("the grid is done")


def test_grid_skips_isomorphic_cells(tmp_path):
    # Two blocks of two ops: swapping a block's two inputs gives the same cell.
    space = tiny.space(num_blocks=1, ops=["identity", "max_pool_3x3"])
    distinct = {a.hash() for a in space.enumerate()}
    oracle = kn.oracles.GridSearchOracle(space, max_trials=len(distinct) + 5, seed=0)
    assert len(oracle.grid()) == len(distinct) < sum(1 for _ in space.enumerate())
    order = [a.hash() for a in oracle.grid()]
    first_seen = list(dict.fromkeys(a.hash() for a in space.enumerate()))
    assert order == first_seen  # Each cell at its first place in the enumeration.


def test_grid_finds_the_best_of_a_table_and_ignores_the_seed(tmp_path):
    space = kn.spaces.MacroSpace(stages=(1, 1, 1, 1))  # 81 architectures, keys "0000".."2222"
    keys = [space.key(space.encode(a)) for a in space.enumerate()]
    scores = {k: (0.99 if k == "2101" else sum(map(int, k)) / 10) for k in keys}
    bench = kn.benchmarks.TabularBenchmark(
        space, {k: {"val_accuracy": v, "test_accuracy": v} for k, v in scores.items()}
    )
    runs = [search(space, bench, tmp_path, 100, project=f"s{seed}", strategy="grid", seed=seed)
            for seed in (0, 1)]  # fmt: skip
    assert keys_of(space, runs[0]) == keys_of(space, runs[1]) == keys
    best = runs[0].best_trials(1)[0]
    assert space.key(best.hyperparameters.values) == "2101" and best.score == 0.99


def test_grid_resumes_where_it_stopped(tmp_path):
    space = six_layers()
    bench = hand_table(space)
    whole = keys_of(space, search(space, bench, tmp_path, 30, project="whole", strategy="grid"))
    search(space, bench, tmp_path, 12, project="parts", strategy="grid")
    resumed = search(space, bench, tmp_path, 30, project="parts", strategy="grid")
    assert keys_of(space, resumed) == whole
    # The hashes of every trial's values are rebuilt from the trial files, not stored in
    # oracle.json (rewritten at each trial's start and end, it would grow with the project).
    with open(tmp_path / "parts" / "oracle.json") as f:
        assert not {"tried_so_far", "id_to_hash"} & set(json.load(f))
    oracle = resumed.oracle
    assert len(oracle._tried_so_far) == len(oracle._id_to_hash) == 30


def test_grid_proposes_distinct_architectures_to_parallel_workers(tmp_path):
    space = six_layers()
    oracle = kn.oracles.GridSearchOracle(space, max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "parallel")
    oracle.verbose = 0
    trials = [oracle.create_trial(f"w{i}") for i in range(4)]
    assert [space.key(t.hyperparameters.values) for t in trials] == [
        "000000",
        "000001",
        "000002",
        "000010",
    ]


def test_grid_refuses_a_space_too_large_to_enumerate():
    space = kn.spaces.NASNetSpace()
    with pytest.raises(ValueError, match=r"has [\d,]+ decision combinations.*'random'") as err:
        kn.Search(space, "grid", max_trials=5)
    assert f"{space.cardinality():,}" in str(err.value)


def test_write_back_batches_the_store_and_loses_nothing_at_its_end(tmp_path):
    space = six_layers()
    oracle = kn.oracles.GridSearchOracle(space, max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    project = tmp_path / "p"

    def written():
        return sorted(p.parent.name for p in project.glob("trial_*/trial.json"))

    with oracle.write_back(2):  # Written each time 2 more trials have finished.
        for i in range(5):
            trial = oracle.create_trial("t")
            oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
            assert len(written()) == 2 * (i // 2)  # Nothing is written as a trial starts,
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            oracle.save()
            # but the batch of trials and the state as each second one ends.
            assert written() == [f"trial_{t}" for t in oracle.end_order[: 2 * ((i + 1) // 2)]]
        assert read_json(str(project / "oracle.json"))["end_order"] == oracle.end_order[:4]
    assert len(written()) == 5  # All of it at the block's end,
    assert read_json(str(project / "oracle.json"))["end_order"] == oracle.end_order
    reloaded = kn.oracles.GridSearchOracle(space, max_trials=10, seed=0)
    reloaded._set_project_dir(str(tmp_path), "p")
    reloaded.reload()  # and it reads back as written, the next trial the sixth of the grid.
    assert [t.status for t in reloaded.trials.values()] == ["COMPLETED"] * 5
    assert reloaded.end_order == oracle.end_order
    assert space.key(reloaded.create_trial("t").hyperparameters.values) == "000012"
    with oracle.write_back(0):  # An interval of 0 writes each change at once.
        trial = oracle.create_trial("t")
        assert (project / f"trial_{trial.trial_id}" / "trial.json").exists()
