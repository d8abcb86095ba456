"""Tests of successive halving across architectures (`kn.Halving`)."""

import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from kerasnas import plan as plan_module
from kerasnas.plan import Promotion, TrialPlan
from kerasnas.training.runner import TrialBuild
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


def finished(trial_id, score):
    hp = keras_tuner.HyperParameters()
    hp.values = {"a": trial_id}
    trial = trial_module.Trial(hp, trial_id=trial_id, status="COMPLETED")
    trial.score = score
    return trial


class Store:
    """What `Halving.next_trial` reads of an oracle: its finished trials and their plans."""

    def __init__(self, direction="max"):
        self.trials, self.plans, self.order = {}, {}, []
        self.objective = keras_tuner.Objective("score", direction)

    def add(self, trial, plan=plan_module.NONE):
        self.trials[trial.trial_id] = trial
        self.plans[trial.trial_id] = plan
        self.order.append(trial.trial_id)

    def finished_trials(self):
        return [self.trials[t] for t in self.order]

    def plan(self, trial_id):
        return self.plans.get(trial_id, plan_module.NONE)


def test_promotions_take_the_best_third_of_a_rung_highest_rung_first():
    h = kn.Halving(max_epochs=9)  # Rungs 1, 3, 9 epochs.
    store = Store()
    store.add(finished("0", 0.2))
    store.add(finished("1", 0.9))
    assert h.next_trial(store) is None  # Two finished: a third of them is no trial.
    store.add(finished("2", 0.5))
    due = h.next_trial(store)
    # The parent's architecture values, unchanged; the promotion in the plan.
    assert due["values"] == {"a": "1"}
    assert due["plan"] == TrialPlan(promotion=Promotion(parent="1", rung=1, epochs=2))
    # Once trial 1 is promoted, no rung-0 trial is due until six have finished.
    store.add(finished("3", 0.95), due["plan"])
    assert h.next_trial(store) is None
    for i in range(4, 7):
        store.add(finished(str(i), 0.1 * i))
    # Six at rung 0: the best two are 1 (promoted) and 6; one at rung 1 is not enough.
    promotion = h.next_trial(store)["plan"].promotion
    assert promotion.parent == "6" and promotion.rung == 1
    # Minimising: the lowest scores go on.
    low = Store("min")
    for i, score in enumerate([0.2, 0.9, 0.5]):
        low.add(finished(str(i), score))
    assert h.next_trial(low)["plan"].promotion.parent == "0"


def test_a_plan_round_trips_through_its_file(tmp_path):
    plan = TrialPlan(
        promotion=Promotion(parent="3", rung=2, epochs=6),
        lineage=kn.morph.lineage.Lineage(ops=("a", "b"), parent="3", parent_ops=1),
        init_weights="w.keras",
    )
    plan_module.write(str(tmp_path), plan)
    assert plan_module.read(str(tmp_path)) == plan
    assert plan_module.read(str(tmp_path / "none")) == plan_module.NONE
    (tmp_path / plan_module.FILE).write_text('{"promotion": {"parent": 1}}')
    with pytest.raises(kn.errors.CorruptStoreError, match="plan.json"):
        plan_module.read(str(tmp_path))


@pytest.mark.parametrize("name", sorted(kn.spaces.SPACES))
def test_halving_promotes_on_every_space(name, tmp_path):
    # A promotion's values are its architecture's alone: every space decodes them (a space
    # that checks its values refused the halving keys that promotions used to carry).
    space = kn.spaces.SPACES[name]()
    oracle = kn.oracles.RandomSearchOracle(
        space, halving=kn.Halving(max_epochs=3, eta=2), max_trials=6, seed=0
    )
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    for k in range(6):
        trial = oracle.create_trial("tuner0")
        assert trial.status == "RUNNING"
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.1 * k})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        space.decode(trial.hyperparameters.values)  # Raises for a value outside the space.
    plans = [oracle.plan(t) for t in sorted(oracle.trials)]
    rungs = {
        t: (p.promotion.rung if p.promotion else 0)
        for t, p in zip(sorted(oracle.trials), plans, strict=True)
    }
    assert any(p.promotion for p in plans)
    for trial_id, plan in zip(sorted(oracle.trials), plans, strict=True):
        assert set(oracle.trials[trial_id].hyperparameters.values) <= {
            h.name for h in oracle.hyperparameters.space
        }
        if plan.promotion:
            parent = oracle.trials[plan.promotion.parent]
            assert oracle.network_hash(parent) == oracle.network_hash(oracle.trials[trial_id])
            details = oracle.trial_details(oracle.trials[trial_id])["halving"]
            assert details["rung"] == plan.promotion.rung == 1 + rungs[plan.promotion.parent]


def test_halving_search_promotes_and_continues_from_checkpoints(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    search = kn.Search(space, "random", halving=kn.Halving(max_epochs=3, eta=2), max_trials=7,
                       seed=0, directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=50, batch_size=64)  # Epochs: the rungs'.
    records = {r["trial_id"]: r for r in search.results()}
    rungs = [r["details"]["halving"]["rung"] for r in records.values()]
    assert rungs.count(0) >= 3 and rungs.count(1) >= 1  # Rungs: 1 epoch, 2, 3.
    for r in records.values():
        trial = search.oracle.trials[r["trial_id"]]
        epochs = len(trial.metrics.get_history("loss"))
        info = r["details"]["halving"]
        assert epochs == {0: 1, 1: 1, 2: 1}[info["rung"]]  # The epochs its rung adds.
        assert info["epochs"] == (1, 2, 3)[info["rung"]]
        if info["rung"]:
            parent = records[info["parent"]]
            parent_info = parent["details"]["halving"]
            assert parent["hash"] == r["hash"] and parent_info["rung"] == info["rung"] - 1
            assert info["scores"][:-1] == parent_info["scores"]
            assert trial.metrics.get_last_value("inherited") == 1.0
    # Each network once among the best, though several trials trained it.
    best = search.best_trials(len(records))
    assert len({search.oracle.network_hash(t) for t in best}) == len(best)


def test_a_promotion_starts_from_its_parent_weights(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    search = kn.Search(space, "random", halving=kn.Halving(max_epochs=2, eta=2), max_trials=3,
                       seed=0, directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), batch_size=64)
    tuner = search._tuner
    trials = search.oracle.trials
    child = next(t for t in trials.values() if search.oracle.plan(t.trial_id).promotion)
    plan = search.oracle.plan(child.trial_id)
    parent = trials[plan.promotion.parent]
    context = TrialBuild(tuner, child, plan, training=True)
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
            before = Store()
            for t in oracle.end_order:
                if int(t) < k and trials[t].status == "COMPLETED":
                    before.add(trials[t], oracle.plan(t))
            before.plans.update({t: oracle.plan(t) for t in trials if int(t) < k})
            due = rule.next_trial(before)
            plan = oracle.plan(str(k))
            assert (due["plan"] if due else plan_module.NONE) == plan
            if due:
                assert due["values"] == trials[str(k)].hyperparameters.values
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
