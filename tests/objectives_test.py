"""Tests of resource-constrained objectives and Pareto fronts."""

import os

import pytest

import kerasnas as kn
from kerasnas.objectives import pareto_front, resource_constrained
from tests import tiny

TABLE = kn.benchmarks.macro_table_path(os.path.dirname(os.path.dirname(__file__)))


def test_mnasnet_reward():
    obj = resource_constrained("val_accuracy", "params", target=1e6)
    assert obj.direction == "max"
    assert obj.compute({"val_accuracy": 0.9, "params": 1e6}) == pytest.approx(0.9)
    assert obj.compute({"val_accuracy": 0.9, "params": 2e6}) == pytest.approx(0.9 * 2**-0.07)
    assert obj.compute({"val_accuracy": 0.9, "params": 5e5}) == pytest.approx(0.9 * 0.5**-0.07)
    hard = resource_constrained("val_accuracy", "params", target=1e6, alpha=0, beta=-1)
    assert hard.compute({"val_accuracy": 0.9, "params": 5e5}) == pytest.approx(0.9)
    assert hard.compute({"val_accuracy": 0.9, "params": 2e6}) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="target must be positive"):
        resource_constrained(target=0)


def test_pareto_front():
    records = [
        {"acc": 0.9, "params": 10},
        {"acc": 0.8, "params": 5},
        {"acc": 0.85, "params": 12},
        {"acc": 0.95, "params": 20},
        {"acc": 0.8, "params": 6},
    ]
    front = pareto_front(records, [("acc", "max"), ("params", "min")])
    assert front == [records[0], records[1], records[3]]


@pytest.mark.skipif(TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent")
def test_resource_constrained_tabular_search_and_front(tmp_path):
    bench = kn.benchmarks.load_macro(TABLE)
    objective = resource_constrained("val_accuracy", "flops", target=100e6)
    search = kn.Search(
        bench.space,
        strategy="evolution",
        objective=objective,
        max_trials=60,
        seed=0,
        evaluator=bench,
        directory=str(tmp_path),
        verbose=0,
    )
    search.fit()
    results = search.results()
    for r in results:
        expected = objective.compute(r["metrics"])
        assert r["score"] == pytest.approx(expected)
    front = search.pareto_front()
    assert 1 <= len(front) < len(results)
    flops = [r["metrics"]["flops"] for r in front]
    accs = [r["metrics"]["val_accuracy"] for r in front]
    assert flops == sorted(flops) and accs == sorted(accs)  # More FLOPs buy accuracy.
    with pytest.raises(ValueError, match="'latency' is not a metric"):
        kn.Search(
            bench.space,
            objective=resource_constrained(resource="latency"),
            evaluator=bench,
            directory=str(tmp_path),
            project_name="lat",
        ).fit()


def test_trained_trials_report_latency_for_latency_objectives(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    objective = resource_constrained("val_accuracy", "latency", target=5.0)
    search = kn.Search(
        tiny.fast_space(),
        objective=objective,
        max_trials=1,
        seed=0,
        directory=str(tmp_path),
        verbose=0,
    )
    search.fit(x, y, validation_data=(xv, yv), epochs=1)
    (r,) = search.results()
    assert r["metrics"]["latency"] > 0
    assert r["score"] == pytest.approx(objective.compute(r["metrics"]))
    assert search.pareto_front() == [r]


@pytest.mark.skipif(TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent")
def test_history_and_pareto_plots(tmp_path):
    bench = kn.benchmarks.load_macro(TABLE)
    objective = resource_constrained("val_accuracy", "flops", target=100e6)
    search = kn.Search(
        bench.space,
        strategy="random",
        objective=objective,
        max_trials=30,
        seed=0,
        evaluator=bench,
        directory=str(tmp_path),
        verbose=0,
    )
    with pytest.raises(ValueError, match="nothing to plot"):
        search.plot_history(tmp_path / "none.png")
    search.fit()
    for name, plot in (("history.png", search.plot_history), ("pareto.png", search.plot_pareto)):
        path = plot(tmp_path / name)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.usefixtures("eager")
def test_parameter_count_as_a_plain_objective(tmp_path):
    import keras_tuner

    (x, y), (xv, yv) = tiny.digits(train=100, val=50)
    search = kn.Search(
        tiny.fast_space(),
        objective=keras_tuner.Objective("params", "min"),
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        verbose=0,
    )
    search.fit(x, y, validation_data=(xv, yv), epochs=1)
    results = search.results()
    assert all(r["status"] == "COMPLETED" for r in results)
    assert [r["score"] for r in results] == [float(r["params"]) for r in results]
    assert search.best_trials(1)[0].score == min(r["params"] for r in results)
