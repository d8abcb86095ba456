"""The RL controller of Zoph & Le (2017) and ENAS: an LSTM policy over decisions.

The policy itself and its policy-gradient updates are `kerasnas.policy.LSTMPolicy`
(which one-shot ENAS uses too); this module makes it a keras-tuner Oracle.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas.architecture import Architecture, Scalar
from kerasnas.cli.registry import Flag
from kerasnas.errors import CorruptStoreError
from kerasnas.oracles.base import NasOracle
from kerasnas.policy import LSTMPolicy, PolicyConfig, takes_policy_settings
from kerasnas.spaces.base import NEIGHBOUR_LIMIT, SearchSpace

WEIGHTS_FILE = "controller.npz"


def _policy_attribute(name: str, doc: str) -> property:
    """An oracle attribute that reads and writes the policy's attribute `name`."""

    def get(self: ControllerOracle) -> Any:
        return getattr(self.controller, name)

    def set_(self: ControllerOracle, value: Any) -> None:
        setattr(self.controller, name, value)

    return property(get, set_, doc=doc)


class ControllerOracle(NasOracle):
    """Neural architecture search with reinforcement learning (Zoph & Le, ICLR 2017;
    Pham et al., ENAS, ICML 2018), as a keras-tuner Oracle.

    Each trial samples an architecture from a `kerasnas.policy.LSTMPolicy`
    (one already evaluated is drawn again, not trained again: the policy
    learns from trained architectures only; after `max_collisions` repeats the
    trial takes the unvisited one-decision change of the last draw that the
    policy finds likeliest); every `batch_size` rewards (trials may finish in
    any order) make one REINFORCE or PPO update of the policy.

    The reward is the trial's objective (negated when it is minimised), times
    MnasNet's resource factor `(resource / resource_target) ** resource_weight`
    when `resource` is set, then cubed when `reward="cubed"` (Zoph & Le cube
    the validation accuracy). Failed trials give `failed_reward`, or nothing
    when it is None. The policy's weights and optimizer state are saved in the
    project directory (`controller.npz`); the baseline, pending samples and
    reward history are saved with the oracle's state, so a search resumed with
    `overwrite=False` continues the same policy.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        reward: `"identity"` or `"cubed"`. Defaults to `"identity"`.
        failed_reward: Reward of a failed trial, or None to learn nothing
            from it. Defaults to None.
        resource: Optional metric name of a resource (e.g. `"params"`) for
            the MnasNet reward factor.
        resource_target: The resource's target value.
        resource_weight: The exponent w. Defaults to -0.07.
        policy: The policy's settings, a `kerasnas.policy.PolicyConfig`;
            None: the defaults.
        **kwargs: The fields of `PolicyConfig` (`algorithm`, `batch_size`,
            `learning_rate`, `entropy_weight`, `units`, ...: they replace
            those of `policy`), and `NasOracle` arguments: `objective`,
            `max_trials`, `seed`, and keras-tuner `Oracle` arguments.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "controller_algorithm": Flag(
            "algorithm", type=str, choices=("reinforce", "ppo"), help="Policy-gradient algorithm"
        ),
        "controller_batch_size": Flag(
            "batch_size", type=int, lower_bound=1, help="Architectures per policy update"
        ),
    }

    @takes_policy_settings
    def __init__(
        self,
        space: SearchSpace,
        *,
        reward: str = "identity",
        failed_reward: float | None = None,
        resource: str | None = None,
        resource_target: float | None = None,
        resource_weight: float = -0.07,
        policy: PolicyConfig | None = None,
        **kwargs: Any,
    ):
        config = PolicyConfig.take(policy, kwargs)  # The rest are NasOracle's arguments.
        if reward not in ("identity", "cubed"):
            raise ValueError(f"reward must be 'identity' or 'cubed'. Received: {reward!r}.")
        if resource is not None and (resource_target is None or resource_target <= 0):
            raise ValueError("resource needs a positive resource_target.")
        super().__init__(space, **kwargs)
        self.reward_shaping = reward
        self.failed_reward = failed_reward
        self.resource = resource
        self.resource_target = resource_target
        self.resource_weight = resource_weight
        self.controller = LSTMPolicy(
            space.decisions,
            config,
            seed=self.seed,
            replay_rng=self.rng,  # Memory replays draw from the oracle's saved sequence.
        )
        self.pending: dict[str, dict] = {}  # trial id -> {"choices", "logp"} of a sample
        self.reward_history: list[float] = []
        self._weights_dirty = True

    # The policy's learning state, read and written through the oracle (its settings too:
    # each field of PolicyConfig, set below the class).
    optimizer = _policy_attribute("optimizer", "The policy's Adam optimizer.")
    baseline = _policy_attribute("baseline", "The moving-average baseline (None at first).")
    buffer = _policy_attribute("buffer", "Rewarded samples waiting for an update.")
    memory = _policy_attribute("memory", "Replay buffer of evaluated choices.")
    updates = _policy_attribute("updates", "Policy updates made.")

    # -- Choices <-> values -------------------------------------------------
    def _values(self, choices: Sequence[int]) -> dict[str, Scalar]:
        return self.controller.choice_values(choices)

    def _choices(self, values: Mapping[str, Scalar]) -> list[int]:
        return self.controller.choice_indices(values)

    def choice_values(self, choices: Sequence[int]) -> dict[str, Scalar]:
        """The decision values of one choice index per decision.

        Args:
            choices: One choice index per decision of the space.
        """
        return self._values(choices)

    def sample_values(self, rng: np.random.Generator) -> dict[str, Scalar]:
        """Decision values of one architecture drawn from the policy.

        Args:
            rng: The generator to draw from.
        """
        return self.controller.sample_values(rng)

    def observe(self, choices: Sequence[int], logp: float, reward: float) -> None:
        """Learns from a reward got outside trials.

        Rewards are batched like trial rewards: every `batch_size` of them
        make one policy update.

        Args:
            choices: The sample's choice index per decision.
            logp: Its log-probability when it was drawn.
            reward: Its reward.
        """
        self.reward_history.append(float(reward))
        self._add_sample(list(choices), logp, float(reward))

    # -- Rewards --------------------------------------------------------------
    def reward(self, trial: trial_module.Trial) -> float | None:
        """The reward of a finished trial (None: nothing to learn from it)."""
        if trial.status != trial_module.TrialStatus.COMPLETED or trial.score is None:
            return self.failed_reward
        value = float(trial.score)
        if self.objective.direction == "min":
            value = -value
        if self.resource is not None:
            used = trial.metrics.get_last_value(self.resource)
            if used and used > 0:
                value *= (used / self.resource_target) ** self.resource_weight
        if self.reward_shaping == "cubed":
            value = value**3
        return value

    # -- The algorithm ----------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        for _ in range(self.max_collisions):
            choices, logp = self.controller.sample(rng)
            arch = self.space.decode(self._values(choices))
            if self.is_new(arch):
                self.pending[trial_id] = {"choices": choices, "logp": logp}
                return self.propose(arch)
        # The policy keeps drawing trained architectures (it has converged): the one-decision
        # change of its last draw that it finds likeliest, not a random jump away from it.
        listed = itertools.islice(self.space.neighbours(arch), NEIGHBOUR_LIMIT)
        near = [a for a in listed if self.is_new(a)]
        if near:
            rows = np.array([self._choices(self.space.encode(a)) for a in near])
            logps = self._log_probs(rows)
            best = int(np.argmax(logps))
            self.pending[trial_id] = {"choices": rows[best].tolist(), "logp": float(logps[best])}
            return self.propose(near[best])
        response = self.propose_random(rng)
        if response["values"] is not None:
            choices = self._choices(response["values"])
            logp = float(self._log_probs([choices])[0])
            self.pending[trial_id] = {"choices": choices, "logp": logp}
        return response

    @keras_tuner.synchronized
    def end_trial(self, trial: trial_module.Trial) -> None:
        super().end_trial(trial)
        trial = self.trials[trial.trial_id]
        if trial.status == trial_module.TrialStatus.RUNNING:
            return  # Sent for a retry.
        sample = self.pending.pop(trial.trial_id, None)
        reward = self.reward(trial)
        if sample is not None and reward is not None:
            self._add_sample(sample["choices"], sample["logp"], reward)
            self.reward_history.append(reward)

    def _add_sample(self, choices: list[int], logp: float, reward: float) -> None:
        if self.controller.observe(choices, logp, reward):
            self._weights_dirty = True

    def _log_probs(self, rows: Any) -> np.ndarray:
        """The policy's log-probability of each row of choice indices, as a numpy array."""
        return keras.ops.convert_to_numpy(self.controller.log_prob(np.asarray(rows))[0])

    # -- Analysis -------------------------------------------------------------
    def log_prob(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The policy's log-probability of each architecture.

        Args:
            archs: Architectures of the space.
        """
        choices = np.array([self._choices(self.space.encode(a)) for a in archs])
        return self._log_probs(choices)

    def embed(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The controller's final hidden state for each architecture, shape (n, units).

        Args:
            archs: Architectures of the space.
        """
        choices = np.array([self._choices(self.space.encode(a)) for a in archs])
        return keras.ops.convert_to_numpy(self.controller.log_prob(choices)[2])

    # -- State ----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            **super().get_state(),
            "controller": {
                "baseline": self.baseline,
                "pending": self.pending,
                "buffer": self.buffer,
                "memory": self.memory,
                "reward_history": self.reward_history,
                "updates": self.updates,
            },
        }

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = state.get("controller", {})
        self.controller.set_state(saved)  # baseline, buffer, memory, updates
        self.pending = saved.get("pending", {})
        self.reward_history = saved.get("reward_history", [])

    def _weights_path(self) -> str:
        return os.path.join(self._project_dir, WEIGHTS_FILE)

    def write_state(self) -> None:
        if self._weights_dirty:
            arrays = self.controller.get_weights() + [
                np.asarray(v.numpy()) for v in self.optimizer.variables
            ]
            buffer = io.BytesIO()
            np.savez(buffer, *arrays)
            path = self._weights_path()
            with open(f"{path}.tmp", "wb") as f:
                f.write(buffer.getvalue())
            os.replace(f"{path}.tmp", path)
            self._weights_dirty = False
        super().write_state()

    def reload(self) -> None:
        super().reload()
        path = self._weights_path()
        if not os.path.exists(path):
            return
        try:
            with np.load(path) as data:
                arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise CorruptStoreError(
                f"The controller weights file {path} cannot be read ({e!r}). Restore it from "
                "a backup, or delete it: the policy then starts afresh, and the trials are kept."
            ) from e
        n = len(self.controller.trainable_variables)
        self.controller.set_weights(arrays[:n])
        for v, w in zip(self.optimizer.variables, arrays[n:], strict=True):
            v.assign(w)
        self._weights_dirty = False


# The policy's settings, read and written through the oracle (`oracle.batch_size`).
for _field in dataclasses.fields(PolicyConfig):
    setattr(
        ControllerOracle,
        _field.name,
        _policy_attribute(_field.name, f"The policy's `{_field.name}` (see `PolicyConfig`)."),
    )
del _field
