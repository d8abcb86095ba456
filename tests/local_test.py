"""Tests of local search (`strategy="local"`) and of `SearchSpace.neighbours`."""

import json
import os
import sys
import textwrap

import numpy as np
import pytest

import kerasnas as kn
from kerasnas import distributed
from tests import tiny

TABLE = kn.benchmarks.macro_table_path(os.path.dirname(os.path.dirname(__file__)))
PEAK = "000000"  # An isolated global optimum: every neighbour of it scores low.


def six_layers():
    return kn.spaces.MacroSpace(stages=(2, 2, 2))


def landscape(key: str) -> float:
    """More 2s score higher (so "222222" is a local optimum), but PEAK is best."""
    return 1.0 if key == PEAK else sum(int(c) for c in key) / 12 * 0.9


def hand_table(space) -> kn.benchmarks.TabularBenchmark:
    keys = [space.key(space.encode(a)) for a in space.enumerate()]
    table = {k: {"val_accuracy": landscape(k), "test_accuracy": landscape(k)} for k in keys}
    return kn.benchmarks.TabularBenchmark(space, table)


def search(space, bench, directory, max_trials, project="p", strategy="local", **kwargs):
    """A tabular search of `strategy` on `bench`, fitted."""
    return kn.Search(
        space,
        strategy=strategy,
        evaluator=bench,
        max_trials=max_trials,
        seed=kwargs.pop("seed", 0),
        directory=str(directory),
        project_name=project,
        verbose=0,
        **kwargs,
    ).fit()


def keys_of(space, s):
    return [
        space.key(space.encode(kn.Architecture.from_json(r["architecture"]))) for r in s.results()
    ]


def distance(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def test_neighbours_change_one_decision_once_each_in_a_fixed_order():
    space = six_layers()
    arch = space.from_key("012012")
    keys = [space.key(space.encode(a)) for a in space.neighbours(arch)]
    assert keys == [space.key(space.encode(a)) for a in space.neighbours(arch)]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert all(distance(k, "012012") == 1 for k in keys)
    assert keys[:2] == ["112012", "212012"]  # Decisions in order, then their choices.
    # Cells: isomorphic changes count once, and none is the architecture itself.
    nasnet = tiny.space()
    cell_arch = nasnet.sample(np.random.default_rng(3))
    hashes = [a.hash() for a in nasnet.neighbours(cell_arch)]
    assert hashes and len(set(hashes)) == len(hashes) and cell_arch.hash() not in hashes
    # A conditional space: a change of depth activates layers with their first choice.
    chain = kn.spaces.ChainSpace(max_layers=3)
    short = chain.decode({"num_layers": 1, "layer_0/filters": 32, "layer_0/kernel": 5})
    deeper = [a for a in chain.neighbours(short) if a.choices["num_layers"] == 2]
    assert deeper[0].choices["layer_1/filters"] == 16


def test_local_climbs_to_the_local_optimum_then_restarts(tmp_path):
    space = six_layers()
    s = search(space, hand_table(space), tmp_path, 70)
    keys = keys_of(space, s)
    assert len(set(keys)) == len(keys) == 70
    # Replay: each trial is a neighbour of the best so far of its run, until every
    # neighbour of that best was tried; then a restart, next to no trial of the run.
    run = [keys[0]]
    restarts = []
    for i, key in enumerate(keys[1:], start=1):
        best = max(run, key=landscape)
        tried = set(keys[:i])
        neighbours = {best[:j] + c + best[j + 1 :] for j in range(6) for c in "012"} - {best}
        if neighbours <= tried:
            assert all(distance(key, r) > 1 for r in run)  # A restart, away from the run.
            restarts.append((best, i))
            run = [key]
        else:
            assert distance(key, best) == 1
            run.append(key)
    # The first run climbed to "222222" (moving to each better neighbour) and stopped
    # there, a local optimum: its 12 neighbours tried, then a restart.
    assert restarts and restarts[0][0] == "222222"
    first_run = keys[: restarts[0][1]]
    bests = [max(first_run[: i + 1], key=landscape) for i in range(len(first_run))]
    assert bests[-1] == "222222" and PEAK not in first_run


def test_local_resumes_as_if_uninterrupted(tmp_path):
    space = six_layers()
    bench = hand_table(space)
    whole = keys_of(space, search(space, bench, tmp_path, 40, project="whole"))
    search(space, bench, tmp_path, 25, project="parts")
    resumed = keys_of(space, search(space, bench, tmp_path, 40, project="parts"))
    assert resumed == whole


def test_local_proposes_neighbours_while_trials_run(tmp_path):
    space = six_layers()
    oracle = kn.oracles.LocalSearchOracle(space, max_trials=20, seed=0)
    oracle._set_project_dir(str(tmp_path), "parallel")
    oracle.verbose = 0
    first = oracle.create_trial("w0")
    # Three more workers ask while the first trial runs: neighbours of it, all distinct.
    others = [oracle.create_trial(f"w{i}") for i in range(1, 4)]
    start = space.key(first.hyperparameters.values)
    keys = [space.key(t.hyperparameters.values) for t in others]
    assert len(set(keys)) == 3 and all(distance(k, start) == 1 for k in keys)


@pytest.mark.skipif(TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent")
def test_local_on_the_macro_table_beats_a_random_start(tmp_path):
    # The table's mean is far lower.
    assert best_of_100_macro_queries(tmp_path, "local") > 0.92


def best_of_100_macro_queries(tmp_path, strategy: str) -> float:
    """The test accuracy of the best-by-validation of 100 distinct NAS-Bench-Macro queries."""
    bench = kn.benchmarks.load_macro(TABLE)
    records = search(bench.space, bench, tmp_path, 100, strategy=strategy).results()
    assert len({r["hash"] for r in records}) == 100
    best = max(records, key=lambda r: r["metrics"]["val_accuracy"])
    return best["metrics"]["test_accuracy"]


CHIEF_WORKER = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import kerasnas as kn
    directory, strategy, kwargs = sys.argv[1], sys.argv[2], eval(sys.argv[3])
    space = kn.spaces.MacroSpace(stages=(2, 2, 2))
    keys = [space.key(space.encode(a)) for a in space.enumerate()]
    table = {k: {"val_accuracy": sum(map(int, k)) / 12} for k in keys}
    bench = kn.benchmarks.TabularBenchmark(space, table)
    kn.Search(space, strategy=strategy, evaluator=bench, max_trials=12, seed=0,
              directory=directory, project_name="cw", **kwargs).fit()
    """
)


def run_chief_and_workers(tmp_path, strategy, **kwargs):
    """Runs a 12-trial tabular search as a chief and two local workers; its trials' keys."""
    script = tmp_path / "search.py"
    script.write_text(CHIEF_WORKER)
    status = distributed.launch(
        [sys.executable, str(script), str(tmp_path), strategy, repr(kwargs)],
        num_workers=2,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "KERASNAS_HEARTBEAT": "0.5"},
        log_dir=tmp_path / "logs",
        timeout=600,
    )
    logs = {p.name: p.read_text()[-3000:] for p in (tmp_path / "logs").iterdir()}
    assert status == 0, logs
    space = six_layers()
    keys = []
    for name in sorted(os.listdir(tmp_path / "cw")):
        if name.startswith("trial_"):
            with open(tmp_path / "cw" / name / "trial.json") as f:
                state = json.load(f)
            assert state["status"] == "COMPLETED"
            keys.append(space.key(state["hyperparameters"]["values"]))
    assert len(keys) == 12 and len(set(keys)) == 12
    return keys


def test_local_runs_as_chief_and_workers(tmp_path):
    keys = run_chief_and_workers(tmp_path, "local")
    # After the first (random) trial, every trial is a neighbour of an earlier one.
    assert all(min(distance(k, e) for e in keys[:i]) == 1 for i, k in enumerate(keys) if i)
