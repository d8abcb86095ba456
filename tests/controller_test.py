"""Tests of the RL controller oracle and its LSTM policy (`kerasnas.policy`)."""

import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from kerasnas.policy import LSTMPolicy, PolicyConfig

SPACE = kn.spaces.MacroSpace(stages=(2, 2, 2))  # 729 architectures
BEST = SPACE.from_key("201201")
TARGET = SPACE.encode(BEST)


def score(values):
    """A synthetic objective whose unique best architecture is BEST."""
    return sum(values[k] == TARGET.get(k) for k in values) / len(values)


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_policy_concentrates_on_the_best_architecture(algorithm):
    oracle = kn.oracles.ControllerOracle(SPACE, algorithm=algorithm, seed=0, max_trials=10)
    rng = np.random.default_rng(0)
    start = float(np.exp(oracle.log_prob([BEST])[0]))
    assert start < 0.01  # Uniform-ish at first: 1/729.
    for _ in range(50 * oracle.batch_size):  # 50 policy updates (both exceed 0.99 by then).
        choices, logp = oracle.controller.sample(rng)
        oracle._add_sample(choices, logp, score(oracle._values(choices)))
    assert oracle.updates == 50
    assert float(np.exp(oracle.log_prob([BEST])[0])) > 0.5


def test_sampled_log_probability_matches_teacher_forcing():
    oracle = kn.oracles.ControllerOracle(SPACE, seed=3, max_trials=10)
    rng = np.random.default_rng(1)
    for _ in range(5):
        choices, logp = oracle.controller.sample(rng)
        forced = float(oracle.controller.log_prob(np.array([choices]))[0][0])
        assert forced == pytest.approx(logp, abs=1e-5)


def drive(oracle, n, fail=()):
    """Runs n trials as a tuner would; trial ids in `fail` fail."""
    oracle.verbose = 0
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        if trial.trial_id in fail:
            trial.status = trial_module.TrialStatus.FAILED
            trial.message = "simulated failure"
        else:
            oracle.update_trial(
                trial.trial_id, {"val_accuracy": score(trial.hyperparameters.values)}
            )
            trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        oracle.save()


def test_resume_restores_the_policy_exactly(tmp_path):
    kwargs = dict(algorithm="ppo", batch_size=3, seed=5, max_trials=12)
    first = kn.oracles.ControllerOracle(SPACE, **kwargs)
    first._set_project_dir(str(tmp_path), "ctl")
    drive(first, 12)
    assert first.updates >= 4
    probe = [SPACE.sample(np.random.default_rng(i)) for i in range(10)]
    saved = first.log_prob(probe)
    again = kn.oracles.ControllerOracle(SPACE, **kwargs)
    again._set_project_dir(str(tmp_path), "ctl")
    assert not np.allclose(again.log_prob(probe), saved)  # A fresh policy differs...
    again.reload()
    np.testing.assert_allclose(again.log_prob(probe), saved, rtol=1e-6)  # ...the restored one not.
    assert again.baseline == first.baseline and again.updates == first.updates
    assert again.reward_history == first.reward_history
    for a, b in zip(again.optimizer.variables, first.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_resumed_search_continues_as_an_uninterrupted_one(tmp_path):
    # Two policy updates in all, one before the interruption and one after.
    whole = kn.oracles.ControllerOracle(SPACE, batch_size=2, seed=2, max_trials=4)
    whole._set_project_dir(str(tmp_path), "whole")
    drive(whole, 4)
    part = kn.oracles.ControllerOracle(SPACE, batch_size=2, seed=2, max_trials=2)
    part._set_project_dir(str(tmp_path), "split")
    drive(part, 2)
    assert part.updates == 1
    rest = kn.oracles.ControllerOracle(SPACE, batch_size=2, seed=2, max_trials=4)
    rest._set_project_dir(str(tmp_path), "split")
    rest.reload()
    drive(rest, 4)

    def keys(oracle):
        return [SPACE.key(oracle.trials[t].hyperparameters.values) for t in sorted(oracle.trials)]

    assert len(keys(whole)) == 4 and keys(rest) == keys(whole)


def test_failed_trials_are_not_rewarded_unless_asked(tmp_path):
    silent = kn.oracles.ControllerOracle(SPACE, batch_size=100, seed=0, max_trials=6)
    silent._set_project_dir(str(tmp_path), "silent")
    drive(silent, 6, fail={"1", "3"})
    assert len(silent.reward_history) == 4 and not silent.pending
    zero = kn.oracles.ControllerOracle(
        SPACE, batch_size=100, seed=0, max_trials=6, failed_reward=0.0
    )
    zero._set_project_dir(str(tmp_path), "zero")
    drive(zero, 6, fail={"1", "3"})
    assert len(zero.reward_history) == 6
    assert zero.reward_history[1] == 0.0 and zero.reward_history[3] == 0.0


def test_several_trials_in_flight(tmp_path):
    oracle = kn.oracles.ControllerOracle(SPACE, batch_size=2, seed=0, max_trials=6)
    oracle._set_project_dir(str(tmp_path), "flight")
    oracle.verbose = 0
    trials = [oracle.create_trial(f"tuner{i}") for i in range(3)]  # Sampled ahead.
    assert len(oracle.pending) == 3 and oracle.updates == 0
    for trial in reversed(trials):  # Finish in another order.
        oracle.update_trial(trial.trial_id, {"val_accuracy": score(trial.hyperparameters.values)})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    assert oracle.updates == 1 and len(oracle.buffer) == 1 and not oracle.pending


def test_duplicates_are_neither_trained_nor_learnt_from_twice(tmp_path):
    tiny = kn.spaces.MacroSpace(stages=(1, 1))  # 9 architectures
    oracle = kn.oracles.ControllerOracle(tiny, batch_size=4, seed=0, max_trials=30)
    oracle._set_project_dir(str(tmp_path), "dups")
    drive(oracle, 30)
    keys = [tiny.key(t.hyperparameters.values) for t in oracle.trials.values()]
    assert len(keys) == len(set(keys)) == 9  # Each architecture trained once; then it stops.
    # One reward per trained architecture: repeated draws do not teach the policy again.
    assert oracle.updates * oracle.batch_size + len(oracle.buffer) == 9


def test_a_converged_policy_proposes_its_likeliest_unvisited_neighbour(tmp_path, monkeypatch):
    oracle = kn.oracles.ControllerOracle(SPACE, seed=0, max_trials=10)
    oracle._set_project_dir(str(tmp_path), "converged")
    best_choices = oracle._choices(TARGET)
    # The policy draws BEST every time, and BEST was trained already.
    monkeypatch.setattr(oracle.controller, "sample", lambda rng: (list(best_choices), -0.01))
    monkeypatch.setattr(oracle, "is_new", lambda arch: arch.hash() != BEST.hash())
    values = oracle.populate_space("t")["values"]
    near = list(SPACE.neighbours(BEST))
    likeliest = near[int(np.argmax(oracle.log_prob(near)))]
    assert SPACE.key(values) == SPACE.key(SPACE.encode(likeliest))
    pending = oracle.pending["t"]
    assert pending["choices"] == oracle._choices(values)
    assert pending["logp"] == pytest.approx(float(oracle.log_prob([likeliest])[0]), abs=1e-5)


def test_rewards_cubed_resource_and_minimised_objectives(tmp_path):
    oracle = kn.oracles.ControllerOracle(
        SPACE, reward="cubed", resource="params", resource_target=100.0, max_trials=2
    )
    trial = trial_module.Trial(oracle.hyperparameters.copy(), trial_id="0")
    trial.metrics.register("val_accuracy", "max")
    trial.metrics.update("val_accuracy", 0.5)
    trial.metrics.register("params", "min")
    trial.metrics.update("params", 200.0)
    trial.status = trial_module.TrialStatus.COMPLETED
    trial.score = 0.5
    assert oracle.reward(trial) == pytest.approx((0.5 * 2**-0.07) ** 3)
    loss = kn.oracles.ControllerOracle(SPACE, objective="val_loss", max_trials=2)
    assert loss.reward(trial) == pytest.approx(-0.5)


def test_memory_loss_and_embeddings():
    oracle = kn.oracles.ControllerOracle(SPACE, seed=0, max_trials=10, memory_weight=1.0)
    archs = [SPACE.sample(np.random.default_rng(i)) for i in range(4)]
    emb = oracle.embed(archs)
    assert emb.shape == (4, 64)
    choices = np.array([oracle._choices(SPACE.encode(a)) for a in archs])
    before = float(oracle.controller.log_prob(choices, with_memory=True)[3])
    rng = np.random.default_rng(0)
    for _ in range(20 * oracle.batch_size):  # 20 updates
        c, lp = oracle.controller.sample(rng)
        oracle._add_sample(c, lp, 0.5)  # Flat rewards: only the memory loss teaches.
    replayed = np.array(oracle.memory[-20:])
    after = float(oracle.controller.log_prob(replayed, with_memory=True)[3])
    assert after < before


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="algorithm must be 'reinforce' or 'ppo'"):
        kn.oracles.ControllerOracle(SPACE, algorithm="a2c")
    with pytest.raises(ValueError, match="reward must be"):
        kn.oracles.ControllerOracle(SPACE, reward="squared")
    with pytest.raises(ValueError, match="resource_target"):
        kn.oracles.ControllerOracle(SPACE, resource="params")
    assert "controller" in kn.oracles.STRATEGIES
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['lr'\\]"):
        LSTMPolicy(SPACE.decisions, lr=0.1)


def test_the_policy_settings_are_declared_once():
    """PolicyConfig's fields are the policy's settings, by keyword or as `policy=`."""
    import dataclasses
    import inspect

    from kerasnas.cli.registry import constructor_default

    defaults = {f.name: f.default for f in dataclasses.fields(PolicyConfig)}
    for cls in (LSTMPolicy, kn.oracles.ControllerOracle):
        shown = inspect.signature(cls).parameters
        assert {name: shown[name].default for name in defaults} == defaults, cls
    assert constructor_default(kn.oracles.ControllerOracle, "batch_size") == 5  # --help's default.
    oracle = kn.oracles.ControllerOracle(
        SPACE, policy=PolicyConfig(batch_size=3, units=16), batch_size=4, max_trials=2
    )
    assert (oracle.batch_size, oracle.units, oracle.controller.units) == (4, 16, 16)
    assert oracle.learning_rate == 0.01  # The default worked out: REINFORCE, one epoch a batch.
    oracle.entropy_weight = 0.5
    assert oracle.controller.entropy_weight == 0.5


def test_the_policy_learns_on_its_own_and_restores_its_state():
    """LSTMPolicy without an oracle (as one-shot ENAS uses it)."""
    policy = LSTMPolicy(SPACE.decisions, seed=0, batch_size=5)
    rng = np.random.default_rng(0)
    best = np.array([policy.choice_indices(TARGET)])
    start = float(np.exp(policy.log_prob(best)[0][0]))
    updated = [
        policy.observe(c, lp, score(policy.choice_values(c)))
        for c, lp in (policy.sample(rng) for _ in range(30 * policy.batch_size))
    ]
    assert sum(updated) == policy.updates == 30 and not policy.buffer
    assert float(np.exp(policy.log_prob(best)[0][0])) > 10 * start
    assert policy.choice_values(policy.choice_indices(TARGET)) == TARGET
    copy = LSTMPolicy(SPACE.decisions, seed=1, batch_size=5)
    copy.set_weights(policy.get_weights())
    copy.set_state(policy.get_state())
    np.testing.assert_allclose(copy.log_prob(best)[0], policy.log_prob(best)[0], rtol=1e-6)
    assert copy.baseline == policy.baseline and copy.updates == 30
    with pytest.raises(ValueError, match="weight arrays"):
        LSTMPolicy(SPACE.decisions, memory_weight=1.0).set_weights(policy.get_weights())
    with pytest.raises(ValueError, match="algorithm must be 'reinforce' or 'ppo'"):
        LSTMPolicy(SPACE.decisions, algorithm="a2c")


def test_the_oracle_delegates_to_its_policy():
    oracle = kn.oracles.ControllerOracle(SPACE, algorithm="ppo", batch_size=3, max_trials=2)
    policy = oracle.controller
    assert isinstance(policy, LSTMPolicy)
    assert oracle.optimizer is policy.optimizer and oracle.batch_size == policy.batch_size == 3
    assert oracle.learning_rate == pytest.approx(0.01 / 4)  # PPO's default: 0.01 / ppo_epochs.
    oracle.set_state({**oracle.get_state(), "controller": {"baseline": 0.5, "updates": 7}})
    assert policy.baseline == 0.5 and policy.updates == 7 and oracle.memory == []
    assert list(oracle.get_state()["controller"]) == [
        "baseline", "pending", "buffer", "memory", "reward_history", "updates",
    ]  # fmt: skip
