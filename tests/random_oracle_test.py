"""Tests of the random-search oracle: dedup by isomorphism, exhaustion, state."""

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from tests import tiny


def run_oracle(oracle, limit=100):
    """Drives an oracle the way a tuner does, scoring every trial 0.5."""
    oracle.verbose = 0
    hashes = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        hashes.append(oracle.space.decode(trial.hyperparameters.values).hash())
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        oracle.save()  # As BaseTuner.on_trial_end does after end_trial.
    return hashes


def test_never_repeats_an_isomorphic_architecture_and_stops_when_exhausted(tmp_path, capsys):
    space = kn.spaces.NASNetSpace(num_blocks=1, ops=["identity"])  # 9 distinct architectures
    oracle = kn.oracles.RandomSearchOracle(space, max_trials=20, seed=0)
    oracle._set_project_dir(str(tmp_path), "exhaust")
    hashes = run_oracle(oracle)
    assert len(hashes) == 9
    assert len(set(hashes)) == 9
    assert "exhausted" in capsys.readouterr().out
    assert "exhausted" in oracle.stop_reason


def test_same_seed_same_proposals(tmp_path):
    space = kn.spaces.NASNetSpace()
    runs = []
    for i in range(2):
        oracle = kn.oracles.RandomSearchOracle(space, max_trials=5, seed=0)
        oracle._set_project_dir(str(tmp_path), f"seed{i}")
        runs.append(run_oracle(oracle))
    assert runs[0] == runs[1] and len(set(runs[0])) == 5
    oracle = kn.oracles.RandomSearchOracle(space, max_trials=5, seed=1)
    oracle._set_project_dir(str(tmp_path), "seed_other")
    assert run_oracle(oracle) != runs[0]


def test_state_round_trip_continues_the_random_sequence(tmp_path):
    space = kn.spaces.NASNetSpace()
    whole = kn.oracles.RandomSearchOracle(space, max_trials=6, seed=3)
    whole._set_project_dir(str(tmp_path), "whole")
    expected = run_oracle(whole)
    first = kn.oracles.RandomSearchOracle(space, max_trials=3, seed=3)
    first._set_project_dir(str(tmp_path), "split")
    part = run_oracle(first)
    again = kn.oracles.RandomSearchOracle(space, max_trials=6, seed=3)
    again._set_project_dir(str(tmp_path), "split")
    again.reload()
    assert part + run_oracle(again) == expected


def test_arguments_are_checked():
    space = kn.spaces.NASNetSpace()
    with pytest.raises(ValueError, match="max_trials must be an integer >= 1"):
        kn.oracles.RandomSearchOracle(space, max_trials=0)
    with pytest.raises(ValueError, match="SearchSpace"):
        kn.oracles.RandomSearchOracle("nasnet", max_trials=3)


@pytest.mark.usefixtures("eager")
def test_works_as_a_plain_keras_tuner_oracle(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=200, val=100)
    space = tiny.fast_space(num_classes=10, input_shape=(8, 8, 1))
    oracle = kn.oracles.RandomSearchOracle(space, objective="val_accuracy", max_trials=2, seed=0)
    tuner = keras_tuner.Tuner(
        oracle=oracle, hypermodel=space, directory=str(tmp_path), project_name="kt"
    )
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    trials = list(oracle.trials.values())
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" for t in trials)
    assert len({space.decode(t.hyperparameters.values).hash() for t in trials}) == 2
    assert tuner.get_best_models(1)[0].count_params() > 0
