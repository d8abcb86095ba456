"""Tests of the comparison harness over the shared tables, and of its Optuna peers."""

import os
import subprocess
import sys

import numpy as np
import pytest

import kerasnas as kn
from kerasnas.benchmarks import compare, harness, tpe

ROOT = os.path.dirname(os.path.dirname(__file__))
FOUND = kn.benchmarks.shared_table_paths(ROOT)
needs_optuna = pytest.mark.skipif(
    not tpe.optuna_available(), reason='optuna is not installed (pip install -e ".[bench]")'
)


def spec(name):
    if name not in FOUND:
        pytest.skip(f"../shared/data/{kn.benchmarks.SHARED_TABLES[name]} is absent")
    return harness.TableSpec(name, FOUND[name])


def test_table_strategies_leave_out_those_that_train():
    names = harness.table_strategies()
    assert {"random", "evolution", "controller"} <= set(names)
    assert not {"morphism", "oneshot", "spos", "enas", "darts", "gdas"} & set(names)
    # Whatever else is registered runs unless it trains networks itself.
    for name, cls in kn.oracles.STRATEGIES.items():
        if cls.needs_runner or cls.needs_validation_data:
            assert name not in names, name

    class Trains(kn.oracles.RandomSearchOracle):
        def prepare(self, context):
            pass

    assert harness.table_strategies({"r": kn.oracles.RandomSearchOracle, "t": Trains}) == ["r"]
    # A strategy may say that it runs on tables whatever its hooks (BANANAS's `prepare`
    # only keeps examples for its optional proxy features).
    assert "bananas" in names

    class SaysSo(Trains):
        runs_on_tables = True

    assert harness.table_strategies({"t": Trains, "s": SaysSo}) == ["s"]


@pytest.mark.parametrize("peer", tpe.PEERS)
def test_optuna_peers_run_and_are_deterministic_for_a_seed(peer):
    try:
        tpe.require_optuna(peer)
    except ImportError as err:
        pytest.skip(str(err))
    bench = spec("channel_resnet").load()
    # GPSampler draws its first 10 trials at random, then fits its Gaussian process.
    first = tpe.peer_search(bench, 15, seed=3, peer=peer)
    again = tpe.peer_search(bench, 15, seed=3, peer=peer)
    other = tpe.peer_search(bench, 15, seed=4, peer=peer)
    assert len(first) == 15
    assert [r["values"] for r in first] == [r["values"] for r in again]
    assert [r["metrics"] for r in first] == [r["metrics"] for r in again]
    assert [r["values"] for r in first] != [r["values"] for r in other]
    # The noisy draw is a kerasnas search's: np.random.default_rng([seed, trial number]).
    for number, record in enumerate(first):
        draws = bench.lookup(record["values"])["val_accuracy"]
        index = np.random.default_rng([3, number]).integers(len(draws))
        assert record["metrics"]["val_accuracy"] == draws[index]
    final, curve, _ = compare.trajectory(first, "val_accuracy", "test_accuracy", 15)
    best = max(first, key=lambda r: r["metrics"]["val_accuracy"])
    assert final == best["metrics"]["test_accuracy"] == curve[-1]


@needs_optuna
def test_budgets_read_from_one_run_equal_separate_runs():
    table = spec("macro")
    kwargs = dict(budgets=(10, 20), seeds=[1], workers=1)
    prefixed = harness.run([table], ["random", "evolution"], prefix=True, **kwargs)
    separate = harness.run([table], ["random", "evolution"], prefix=False, **kwargs)
    assert prefixed.strategies == ("tpe", "random", "evolution")
    for budget in (10, 20):
        for name in prefixed.strategies:
            cut = prefixed.results["macro"][budget][name]
            alone = separate.results["macro"][budget][name]
            assert cut.curves.shape == (1, budget)
            np.testing.assert_array_equal(cut.final, alone.final)
            np.testing.assert_array_equal(cut.curves, alone.curves)
            np.testing.assert_array_equal(cut.rewards, alone.rewards)
    # And both equal the older compare() at that budget.
    bench = table.load()
    old = compare.compare(bench, ["random", "evolution"], budget=10, seeds=[1], verbose=False)
    for name in ("random", "evolution"):
        np.testing.assert_array_equal(old[name].curves, prefixed.results["macro"][10][name].curves)


def test_strategy_result_cut_and_standard_error():
    curves = np.array([[0.1, 0.3, 0.3], [0.2, 0.2, 0.5]])
    result = compare.StrategyResult("s", curves[:, -1], curves, curves, 1.0)
    cut = result.at(2)
    np.testing.assert_array_equal(cut.final, [0.3, 0.2])
    assert cut.se == pytest.approx(np.std([0.3, 0.2], ddof=1) / np.sqrt(2))
    assert cut.line(table="t") == "s mean=0.2500 std=0.0500 se=0.0500 table=t seeds=2 budget=2"
    with pytest.raises(ValueError, match=r"budget must lie in \[1, 3\]"):
        result.at(4)


def run_cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "kerasnas.benchmarks", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@needs_optuna
def test_harness_prints_the_documented_lines_in_parallel(tmp_path):
    spec("macro"), spec("channel_mobilenet")
    run = run_cli(
        "--tables=macro,channel_mobilenet",
        "--strategies=random,evolution",
        "--budgets=20,10",
        "--seeds=2",
        "--workers=2",
        f"--plot={tmp_path / 'cmp'}",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    plots = [f"plot written to {tmp_path / 'cmp'}_{t}.png" for t in ("macro", "channel_mobilenet")]
    assert lines[:2] == plots
    assert (tmp_path / "cmp_macro.png").read_bytes()[:4] == b"\x89PNG"
    assert lines[2].startswith("table macro (") and "6561 architectures" in lines[2]
    assert lines[9].startswith("table channel_mobilenet (") and "(4444342)" in lines[9]
    rows = [line.split() for line in lines[3:9] + lines[10:16]]
    expected = [
        (table, budget, name)
        for table in ("macro", "channel_mobilenet")
        for budget in (10, 20)
        for name in ("tpe", "random", "evolution")
    ]
    assert [(r[4][6:], int(r[6][7:]), r[0]) for r in rows] == expected
    for row in rows:
        assert [f.split("=")[0] for f in row[1:]] == [
            "mean",
            "std",
            "se",
            "table",
            "seeds",
            "budget",
        ]
        assert 0.85 < float(row[1][5:]) < 0.94
    # Then per budget the strategies by mean rank, and each table scored by the other's pick.
    regret = [line.split()[:3] for line in lines[16:]]
    assert [r[:2] for r in regret] == [["regret", "budget=10"]] * 3 + [
        ["leave-one-out", "budget=10"]
    ] * 2 + [["regret", "budget=20"]] * 3 + [["leave-one-out", "budget=20"]] * 2
    assert {r[2] for r in regret[:3]} == {"strategy=tpe", "strategy=random", "strategy=evolution"}
    # The two worker processes give what one process gives.
    serial = harness.run(
        [spec("macro"), spec("channel_mobilenet")],
        ["random", "evolution"],
        budgets=(10, 20),
        seeds=2,
        workers=1,
    )
    assert run.stdout.strip().splitlines()[2:] == serial.lines()
    assert "macro evolution: 2 searches" in run.stderr


def test_harness_refuses_bad_arguments():
    bad = run_cli("--strategies=random,darts", "--seeds=1")
    assert bad.returncode == 2
    assert "strategy ['darts'] trains networks itself" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = run_cli("--tables=macro,nasbench301", "--seeds=1")
    assert bad.returncode == 2 and "unknown table ['nasbench301']" in bad.stderr


class _Table:
    """A stand-in for a `TableSpec`: `load()` gives an object with the table's records."""

    def __init__(self, values):
        self.table = {str(i): {"test_accuracy": v} for i, v in enumerate(values)}

    def load(self):
        return self


def _result(name, finals):
    finals = np.asarray(finals, dtype=float)
    curves = np.tile(finals[:, None], (1, 2))
    return compare.StrategyResult(name, finals, curves, curves, 0.0)


def test_regrets_ranks_and_leave_one_out():
    # Table a: best 1.0, top-1 % edge 0.99 (spread 0.01); table b: best 100, edge 90 (spread 10).
    a = _Table([*np.linspace(0.0, 0.99, 100), 1.0])
    b = _Table([*np.linspace(0.0, 90.0, 100), 100.0])
    results = {
        "a": {2: {"x": _result("x", [1.0, 0.99]), "y": _result("y", [0.98, 0.98])}},
        "b": {2: {"x": _result("x", [80.0, 80.0]), "y": _result("y", [90.0, 100.0])}},
    }
    comparison = harness.Comparison(
        {"a": a, "b": b}, (2,), ("x", "y"), results, "val_accuracy", "test_accuracy"
    )
    regrets = comparison.regrets("a", 2)
    np.testing.assert_allclose(regrets["x"], [0.0, 1.0], atol=1e-9)  # In units of 0.01.
    np.testing.assert_allclose(comparison.regrets("b", 2)["y"], [1.0, 0.0], atol=1e-9)
    assert comparison.ranks(2) == {"a": {"x": 1.0, "y": 2.0}, "b": {"x": 2.0, "y": 1.0}}
    lines = comparison.regret_lines()
    assert lines[0] == "regret budget=2 strategy=x mean_rank=1.50 a=0.50±0.50(1) b=2.00±0.00(2)"
    assert lines[1].startswith("regret budget=2 strategy=y mean_rank=1.50 a=2.00±0.00(2)")
    # Left out, each table is scored with the strategy the other table ranks first.
    assert lines[2:] == [
        "leave-one-out budget=2 table=a chosen=y rank=2/2 regret=2.00",
        "leave-one-out budget=2 table=b chosen=x rank=2/2 regret=2.00",
    ]
