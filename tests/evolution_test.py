"""Tests of regularized evolution."""

import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn


def drive(oracle, score, n):
    """Runs n trials through the oracle, scoring each with score(values)."""
    oracle.verbose = 0
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        oracle.update_trial(trial.trial_id, {"val_accuracy": score(trial.hyperparameters.values)})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        oracle.save()
    return [oracle.trials[t] for t in oracle.start_order]


def ones(values):
    return sum(v == "mb_e6_k5" for v in values.values()) / 8


def test_first_trials_are_random_then_children_mutate_one_decision(tmp_path):
    space = kn.spaces.MacroSpace()
    oracle = kn.oracles.EvolutionOracle(
        space, population_size=10, sample_size=3, max_trials=40, seed=0
    )
    oracle._set_project_dir(str(tmp_path), "evo")
    trials = drive(oracle, ones, 40)
    assert len(trials) == 40
    seen = [t.hyperparameters.values for t in trials]
    for values in seen[10:]:
        # Every child is one decision away from some earlier architecture.
        earlier = seen[: seen.index(values)]
        assert min(sum(values[k] != e[k] for k in values) for e in earlier) == 1
    assert len({space.key(v) for v in seen}) == 40  # No architecture twice.


def test_evolution_climbs_a_smooth_objective(tmp_path):
    space = kn.spaces.MacroSpace()
    best = {}
    for name in ("random", "evolution"):
        scores = []
        for seed in range(5):
            oracle = kn.oracles.STRATEGIES[name](space, max_trials=50, seed=seed)
            oracle._set_project_dir(str(tmp_path), f"{name}{seed}")
            scores.append(max(t.score for t in drive(oracle, ones, 50)))
        best[name] = sum(scores) / len(scores)
    assert best["evolution"] > best["random"]


def test_population_ages_out_old_trials(tmp_path):
    space = kn.spaces.MacroSpace()
    oracle = kn.oracles.EvolutionOracle(
        space, population_size=5, sample_size=2, max_trials=12, seed=1
    )
    oracle._set_project_dir(str(tmp_path), "age")
    trials = drive(oracle, ones, 12)
    assert [t.trial_id for t in oracle.population()] == [t.trial_id for t in trials[-5:]]


def test_arguments_are_checked():
    space = kn.spaces.MacroSpace()
    with pytest.raises(ValueError, match="population_size"):
        kn.oracles.EvolutionOracle(space, population_size=1)
    with pytest.raises(ValueError, match="sample_size"):
        kn.oracles.EvolutionOracle(space, population_size=4, sample_size=5)
