"""The RL controller of Zoph & Le (2017) and ENAS: an LSTM policy over decisions."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.engine.oracle import synchronized

from kerasnas.architecture import Architecture, Scalar
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import Decision, SearchSpace

WEIGHTS_FILE = "controller.npz"


class Controller:
    """An autoregressive LSTM that emits one softmax per decision of a space.

    Step t feeds the embedding of the choice made at step t-1 (a learned start
    vector at t = 0) into an LSTM cell and reads decision t's logits from the
    hidden state through its own dense head. Logits may be divided by a
    temperature and squashed as `tanh_constant * tanh(logits)`, as in ENAS.

    Args:
        decisions: The space's decisions, in order.
        units: LSTM units. Defaults to 64.
        temperature: Optional logit temperature.
        tanh_constant: Optional tanh logit clipping constant (ENAS uses 1.5-2.5).
        memory: Whether to add the reconstruction heads of the controller
            memory loss (see `ControllerOracle`'s `memory_weight`).
        seed: Seed of the weight initialisation.
    """

    def __init__(
        self,
        decisions: Sequence[Decision],
        units: int = 64,
        temperature: float | None = None,
        tanh_constant: float | None = None,
        memory: bool = False,
        seed: int = 0,
    ):
        self.decisions = tuple(decisions)
        self.sizes = [len(d.choices) for d in self.decisions]
        self.units = units
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
        self.cell = keras.layers.LSTMCell(
            units, kernel_initializer=init, recurrent_initializer=init, dtype="float32"
        )
        self.start = keras.Variable(init((1, units)), name="start", dtype="float32", trainable=True)
        self.embeddings = [
            keras.layers.Embedding(n, units, embeddings_initializer=init) for n in self.sizes
        ]
        self.heads = [keras.layers.Dense(n, kernel_initializer=init) for n in self.sizes]
        self.memory_heads = (
            [keras.layers.Dense(n, kernel_initializer=init) for n in self.sizes] if memory else []
        )
        # Build every layer once so that the variables exist (and can be saved).
        zeros = np.zeros((1, len(self.sizes)), dtype="int32")
        self.log_prob(zeros, with_memory=bool(memory))

    @property
    def trainable_variables(self) -> list:
        layers = [self.cell, *self.embeddings, *self.heads, *self.memory_heads]
        return [self.start] + [v for layer in layers for v in layer.trainable_variables]

    def _logits(self, h, t: int):
        logits = self.heads[t](h)
        if self.temperature:
            logits = logits / self.temperature
        if self.tanh_constant:
            logits = self.tanh_constant * tf.tanh(logits)
        return logits

    def _initial(self, n: int):
        x = tf.tile(tf.convert_to_tensor(self.start), [n, 1])
        state = [tf.zeros((n, self.units)), tf.zeros((n, self.units))]
        return x, state

    def sample(self, rng: np.random.Generator) -> tuple[list[int], float]:
        """Draws one architecture: its choice index per decision and log-probability.

        The randomness comes from `rng` (one uniform number per decision,
        inverted through the softmax's cumulative distribution), so a seeded
        search samples the same architectures every time.
        """
        u = rng.random(len(self.sizes)).astype("float32")
        choices, logp = self._sample_graph(tf.constant(u))
        return [int(c) for c in choices.numpy()], float(logp.numpy())

    @tf.function(reduce_retracing=True)
    def _sample_graph(self, u):
        x, state = self._initial(1)
        logp = tf.constant(0.0)
        choices = []
        for t in range(len(self.sizes)):
            h, state = self.cell(x, state)
            log_probs = tf.nn.log_softmax(self._logits(h, t))[0]
            cdf = tf.cumsum(tf.exp(log_probs))
            c = tf.minimum(
                tf.reduce_sum(tf.cast(cdf < u[t] * cdf[-1], tf.int32)), self.sizes[t] - 1
            )
            choices.append(c)
            logp += log_probs[c]
            x = self.embeddings[t](tf.reshape(c, [1]))
        return tf.stack(choices), logp

    def log_prob(self, choices: np.ndarray, with_memory: bool = False):
        """Teacher-forced pass over a batch of choice indices (n, decisions).

        Returns:
            `(log_prob, entropy, final_hidden, memory_loss)`: per-architecture
            log-probability and summed entropy, the final hidden states, and
            the reconstruction loss of the memory heads (0 without them).
        """
        choices = tf.convert_to_tensor(choices, dtype=tf.int32)
        n = tf.shape(choices)[0]
        x, state = self._initial(n)
        logp = tf.zeros((n,))
        entropy = tf.zeros((n,))
        h = None
        for t in range(len(self.sizes)):
            h, state = self.cell(x, state)
            log_probs = tf.nn.log_softmax(self._logits(h, t))
            logp += tf.gather(log_probs, choices[:, t], axis=1, batch_dims=1)
            entropy -= tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=1)
            x = self.embeddings[t](choices[:, t])
        memory_loss = tf.constant(0.0)
        if with_memory and self.memory_heads:
            losses = [
                tf.nn.sparse_softmax_cross_entropy_with_logits(choices[:, t], head(h))
                for t, head in enumerate(self.memory_heads)
            ]
            memory_loss = tf.reduce_mean(tf.add_n(losses)) / len(losses)
        return logp, entropy, h, memory_loss

    def get_weights(self) -> list[np.ndarray]:
        return [np.asarray(v.numpy()) for v in self.trainable_variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        variables = self.trainable_variables
        if len(weights) != len(variables):
            raise ValueError(
                f"The saved controller has {len(weights)} weight arrays; this one has "
                f"{len(variables)}. Was it saved with other controller settings?"
            )
        for v, w in zip(variables, weights, strict=True):
            v.assign(w)


class ControllerOracle(NasOracle):
    """Neural architecture search with reinforcement learning (Zoph & Le, ICLR 2017;
    Pham et al., ENAS, ICML 2018), as a keras-tuner Oracle.

    ```
    for each trial: sample an architecture from the LSTM policy
        (one already evaluated is not trained again: its stored reward is
         used for learning and another is sampled)
    when `batch_size` rewards have arrived (trials may finish in any order):
        advantage = reward - baseline            # exponential moving average
        REINFORCE: minimise -mean(advantage * log p(arch)) - entropy_weight * entropy
        PPO: several epochs of the clipped surrogate objective on the batch
    ```

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
        algorithm: `"reinforce"` or `"ppo"`. Defaults to `"reinforce"`.
        batch_size: Architectures per policy update. Defaults to 5.
        learning_rate: Adam learning rate of the policy. Defaults to 0.01
            divided by the epochs per batch (1 for REINFORCE, `ppo_epochs`
            for PPO): PPO's several epochs at 0.01 converge prematurely.
        baseline_decay: Decay of the moving-average baseline. Defaults to 0.9.
        entropy_weight: Weight of the entropy bonus. Defaults to 1e-3.
        grad_clip: Global gradient-norm clipping. Defaults to 5.
        reward: `"identity"` or `"cubed"`. Defaults to `"identity"`.
        temperature: Optional logit temperature (ENAS: 5).
        tanh_constant: Optional tanh logit clipping (ENAS: 2.5).
        ppo_epochs: PPO epochs over each batch. Defaults to 4.
        ppo_clip: PPO clipping epsilon. Defaults to 0.2.
        failed_reward: Reward of a failed trial, or None to learn nothing
            from it. Defaults to None.
        resource: Optional metric name of a resource (e.g. `"params"`) for
            the MnasNet reward factor.
        resource_target: The resource's target value.
        resource_weight: The exponent w. Defaults to -0.07.
        units: LSTM units. Defaults to 64.
        memory_weight: Weight of the controller-memory loss: the controller
            must reconstruct every choice of architectures replayed from a
            buffer of evaluated ones from its final hidden state, so that its
            state encodes past choices. 0 (default) turns it off.
        memory_size: Architectures kept in the replay buffer. Defaults to 200.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    def __init__(
        self,
        space: SearchSpace,
        algorithm: str = "reinforce",
        batch_size: int = 5,
        learning_rate: float | None = None,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        grad_clip: float = 5.0,
        reward: str = "identity",
        temperature: float | None = None,
        tanh_constant: float | None = None,
        ppo_epochs: int = 4,
        ppo_clip: float = 0.2,
        failed_reward: float | None = None,
        resource: str | None = None,
        resource_target: float | None = None,
        resource_weight: float = -0.07,
        units: int = 64,
        memory_weight: float = 0.0,
        memory_size: int = 200,
        **kwargs: Any,
    ):
        if algorithm not in ("reinforce", "ppo"):
            raise ValueError(
                f"algorithm must be 'reinforce' or 'ppo'. Received: algorithm={algorithm!r}."
            )
        if reward not in ("identity", "cubed"):
            raise ValueError(f"reward must be 'identity' or 'cubed'. Received: {reward!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {batch_size}.")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1). Received: {baseline_decay}.")
        if resource is not None and (resource_target is None or resource_target <= 0):
            raise ValueError("resource needs a positive resource_target.")
        super().__init__(space, **kwargs)
        self.algorithm = algorithm
        self.batch_size = batch_size
        if learning_rate is None:
            learning_rate = 0.01 / (ppo_epochs if algorithm == "ppo" else 1)
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.grad_clip = grad_clip
        self.reward_shaping = reward
        self.ppo_epochs = ppo_epochs
        self.ppo_clip = ppo_clip
        self.failed_reward = failed_reward
        self.resource = resource
        self.resource_target = resource_target
        self.resource_weight = resource_weight
        self.memory_weight = memory_weight
        self.memory_size = memory_size
        self.controller = Controller(
            space.decisions,
            units=units,
            temperature=temperature,
            tanh_constant=tanh_constant,
            memory=memory_weight > 0,
            seed=self.seed,
        )
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.controller.trainable_variables)
        self.baseline: float | None = None
        self.pending: dict[str, dict] = {}  # trial id -> {"choices", "logp"} of a sample
        self.buffer: list[dict] = []  # rewarded samples waiting for an update
        self.memory: list[list[int]] = []  # replay buffer of evaluated choices
        self.reward_history: list[float] = []
        self.updates = 0
        self._weights_dirty = True

    # -- Choices <-> values -------------------------------------------------
    def _values(self, choices: Sequence[int]) -> dict[str, Scalar]:
        values: dict[str, Scalar] = {}
        for d, c in zip(self.space.decisions, choices, strict=True):
            if d.is_active(values):
                values[d.name] = d.choices[c]
        return values

    def _choices(self, values: Mapping[str, Scalar]) -> list[int]:
        return [
            d.choices.index(values[d.name]) if d.name in values else 0 for d in self.space.decisions
        ]

    def choice_values(self, choices: Sequence[int]) -> dict[str, Scalar]:
        """The decision values of one choice index per decision."""
        return self._values(choices)

    def sample_values(self, rng: np.random.Generator) -> dict[str, Scalar]:
        """Decision values of one architecture drawn from the policy."""
        return self._values(self.controller.sample(rng)[0])

    def observe(self, choices: Sequence[int], logp: float, reward: float) -> None:
        """Learns from a reward got outside trials (e.g. ENAS's shared-weight accuracy).

        Rewards are batched like trial rewards: every `batch_size` of them
        make one policy update.
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

    def _reward_of(self, arch: Architecture) -> float | None:
        """The reward of a finished trial with this architecture, if any."""
        finished = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)
        for trial_id, digest in self._id_to_hash.items():
            trial = self.trials.get(trial_id)
            if digest == arch.hash() and trial is not None and trial.status in finished:
                return self.reward(trial)
        return None

    # -- The algorithm ----------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        for _ in range(self.max_collisions):
            choices, logp = self.controller.sample(rng)
            arch = self.space.decode(self._values(choices))
            if self.is_new(arch):
                self.pending[trial_id] = {"choices": choices, "logp": logp}
                return self.propose(arch)
            # Already evaluated: learn from its stored reward instead of training it again.
            reward = self._reward_of(arch)
            if reward is not None:
                self._add_sample(choices, logp, reward)
        # The policy keeps proposing known architectures: explore at random.
        response = self.propose_random(rng)
        if response["values"] is not None:
            choices = self._choices(response["values"])
            logp = float(self.controller.log_prob(np.array([choices]))[0][0])
            self.pending[trial_id] = {"choices": choices, "logp": logp}
        return response

    @synchronized
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
        self.buffer.append({"choices": list(choices), "logp": float(logp), "reward": reward})
        self.memory = (self.memory + [list(choices)])[-self.memory_size :]
        if len(self.buffer) >= self.batch_size:
            batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
            self._update(batch)

    def _update(self, batch: list[dict]) -> None:
        rewards = np.array([s["reward"] for s in batch], dtype="float32")
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        advantage = tf.constant(rewards - self.baseline)
        self.baseline = float(
            self.baseline_decay * self.baseline + (1 - self.baseline_decay) * rewards.mean()
        )
        choices = np.array([s["choices"] for s in batch])
        old_logp = tf.constant([s["logp"] for s in batch], dtype="float32")
        memory = None
        if self.memory_weight > 0 and self.memory:
            pick = self.rng().choice(len(self.memory), min(len(self.memory), 32), replace=False)
            memory = np.array([self.memory[i] for i in pick])
        if memory is None:
            memory = np.zeros((0, len(self.space.decisions)), dtype="int32")
        for _ in range(self.ppo_epochs if self.algorithm == "ppo" else 1):
            self._step(
                tf.constant(choices, tf.int32), advantage, old_logp, tf.constant(memory, tf.int32)
            )
        self.updates += 1
        self._weights_dirty = True

    @tf.function(reduce_retracing=True)
    def _step(self, choices, advantage, old_logp, memory) -> None:
        variables = self.controller.trainable_variables
        with tf.GradientTape() as tape:
            logp, entropy, _, _ = self.controller.log_prob(choices)
            if self.algorithm == "ppo":
                ratio = tf.exp(logp - old_logp)
                clipped = tf.clip_by_value(ratio, 1 - self.ppo_clip, 1 + self.ppo_clip)
                loss = -tf.reduce_mean(tf.minimum(ratio * advantage, clipped * advantage))
            else:
                loss = -tf.reduce_mean(advantage * logp)
            loss -= self.entropy_weight * tf.reduce_mean(entropy)
            if self.memory_weight > 0:
                _, _, _, memory_loss = self.controller.log_prob(memory, with_memory=True)
                loss += self.memory_weight * memory_loss
        grads = tape.gradient(loss, variables)
        grads = [
            g if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables, strict=True)
        ]
        grads, _ = tf.clip_by_global_norm(grads, self.grad_clip)
        self.optimizer.apply(grads, variables)

    # -- Analysis -------------------------------------------------------------
    def log_prob(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The policy's log-probability of each architecture."""
        choices = np.array([self._choices(self.space.encode(a)) for a in archs])
        return self.controller.log_prob(choices)[0].numpy()

    def embed(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The controller's final hidden state for each architecture, shape (n, units)."""
        choices = np.array([self._choices(self.space.encode(a)) for a in archs])
        return self.controller.log_prob(choices)[2].numpy()

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
        self.baseline = saved.get("baseline")
        self.pending = saved.get("pending", {})
        self.buffer = saved.get("buffer", [])
        self.memory = saved.get("memory", [])
        self.reward_history = saved.get("reward_history", [])
        self.updates = saved.get("updates", 0)

    def _weights_path(self) -> str:
        return os.path.join(self._project_dir, WEIGHTS_FILE)

    def save(self) -> None:
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
        super().save()

    def reload(self) -> None:
        super().reload()
        path = self._weights_path()
        if not os.path.exists(path):
            return
        try:
            with np.load(path) as data:
                arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        except (OSError, ValueError) as e:
            raise ValueError(f"The controller weights file {path} cannot be read: {e}") from e
        n = len(self.controller.trainable_variables)
        self.controller.set_weights(arrays[:n])
        for v, w in zip(self.optimizer.variables, arrays[n:], strict=True):
            v.assign(w)
        self._weights_dirty = False
