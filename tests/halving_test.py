"""Tests of successive halving across architectures (`kn.Halving`)."""

import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from kerasnas.oracles import halving
from kerasnas.training.runner import _TrialBuild
from tests import tiny


def test_rungs_and_arguments():
    assert kn.Halving(max_epochs=9).rungs == (1, 3, 9)
    assert kn.Halving(max_epochs=10, min_epochs=2, eta=2).rungs == (2, 4, 8, 10)
    for bad, match in (
        (dict(max_epochs=0), "max_epochs must be an integer >= 1"),
        (dict(max_epochs=9, eta=1), "eta must be >= 2"),
        (dict(max_epochs=3, min_epochs=3), "min_epochs must be below max_epochs"),
    ):
        with pytest.raises(ValueError, match=match):
            kn.Halving(**bad)


def finished(trial_id, score, **values):
    hp = keras_tuner.HyperParameters()
    hp.values = {"a": trial_id, **values}
    trial = trial_module.Trial(hp, trial_id=trial_id, status="COMPLETED")
    trial.score = score
    return trial


def test_promotions_take_the_best_third_of_a_rung_highest_rung_first():
    h = kn.Halving(max_epochs=9)  # Rungs 1, 3, 9 epochs.
    trials = {t.trial_id: t for t in (finished(str(i), s) for i, s in enumerate([0.2, 0.9, 0.5]))}
    order = list(trials)
    promotion = h.promotion(trials, order[:2], "max")
    assert promotion is None  # Two finished: a third of them is no trial.
    promotion = h.promotion(trials, order, "max")
    assert promotion == {"a": "1", halving.RUNG: 1, halving.PARENT: "1", halving.EPOCHS: 2}
    # Once trial 1 is promoted, no rung-0 trial is due until six have finished.
    trials["3"] = finished("3", 0.95, **{**promotion, "a": "1"})
    assert h.promotion(trials, [*order, "3"], "max") is None
    more = {str(i): finished(str(i), 0.1 * i) for i in range(4, 7)}
    trials.update(more)
    # Six at rung 0: the best two are 1 (promoted) and 6; one at rung 1 is not enough.
    promotion = h.promotion(trials, [*order, "3", *more], "max")
    assert promotion[halving.PARENT] == "6" and promotion[halving.RUNG] == 1
    # Minimising: the lowest scores go on.
    assert h.promotion(trials, order, "min")[halving.PARENT] == "0"


def test_halving_search_promotes_and_continues_from_checkpoints(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    search = kn.Search(space, "random", halving=kn.Halving(max_epochs=3, eta=2), max_trials=7,
                       seed=0, directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=50, batch_size=64)  # Epochs: the rungs'.
    records = {r["trial_id"]: r for r in search.results()}
    rungs = [r["halving"]["rung"] for r in records.values()]
    assert rungs.count(0) >= 3 and rungs.count(1) >= 1  # Rungs: 1 epoch, 2, 3.
    for r in records.values():
        trial = search.oracle.trials[r["trial_id"]]
        epochs = len(trial.metrics.get_history("loss"))
        info = r["halving"]
        assert epochs == {0: 1, 1: 1, 2: 1}[info["rung"]]  # The epochs its rung adds.
        assert info["epochs"] == (1, 2, 3)[info["rung"]]
        if info["rung"]:
            parent = records[info["parent"]]
            assert parent["hash"] == r["hash"] and parent["halving"]["rung"] == info["rung"] - 1
            assert info["scores"][:-1] == parent["halving"]["scores"]
            assert trial.metrics.get_last_value("inherited") == 1.0
    # Each network once among the best, though several trials trained it.
    best = search.best_trials(len(records))
    assert len({search.oracle.network_hash(t.hyperparameters.values) for t in best}) == len(best)


def test_a_promotion_starts_from_its_parent_weights(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    search = kn.Search(space, "random", halving=kn.Halving(max_epochs=2, eta=2), max_trials=3,
                       seed=0, directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), batch_size=64)
    tuner = search._tuner
    trials = search.oracle.trials
    child = next(t for t in trials.values() if halving.parent(t.hyperparameters.values))
    parent = trials[halving.parent(child.hyperparameters.values)]
    context = _TrialBuild(tuner, child, training=True)
    continued = search.oracle.model_for_trial(child, context)
    saved = tuner.load_model(parent)
    for a, b in zip(continued.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_resumed_search_promotes_what_its_store_calls_for(tmp_path, eager):
    # What to promote is read from the trial store alone: replaying the store trial by
    # trial, each promotion is the one its predecessors called for, and each new
    # architecture came when none was due, in a search resumed midway.
    # (The runs' scores differ: training is not bit-identical from run to run.)
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    rule = kn.Halving(max_epochs=2, eta=2)

    def run(project, max_trials):
        s = kn.Search(space, "evolution", halving=rule, max_trials=max_trials, seed=0,
                      directory=str(tmp_path), project_name=project, verbose=0,
                      population_size=3, sample_size=2)  # fmt: skip
        s.fit(x, y, validation_data=(xv, yv), batch_size=64)
        return s.oracle

    run("parts", 3)
    for oracle in (run("parts", 6),):
        trials = oracle.trials
        assert sorted(trials) == [str(i) for i in range(6)]
        promotions = 0
        for k in range(6):
            before = {t: trials[t] for t in trials if int(t) < k}
            due = rule.promotion(before, [t for t in oracle.end_order if int(t) < k], "max")
            values = trials[str(k)].hyperparameters.values
            assert due == (values if halving.rung(values) else None)
            promotions += due is not None
        assert promotions >= 1


def test_strategies_that_cannot_halve_and_settings_that_change_refuse(tmp_path):
    space = tiny.fast_space()
    with pytest.raises(ValueError, match="MorphismOracle cannot run with halving"):
        kn.Search(space, "morphism", halving=kn.Halving(max_epochs=3))
    with pytest.raises(ValueError, match="halving must be a kerasnas.Halving"):
        kn.Search(space, "random", halving=3)
    table = kn.benchmarks.TabularBenchmark(
        space,
        {space.key(space.encode(space.sample(np.random.default_rng(0)))): {"val_accuracy": 1}},
    )
    with pytest.raises(ValueError, match="an evaluator looks trials up"):
        kn.Search(space, "random", halving=kn.Halving(max_epochs=3), evaluator=table)
