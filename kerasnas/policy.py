"""An autoregressive LSTM policy over a search space's decisions, and its policy-gradient updates.

The policy of Zoph & Le (ICLR 2017) and ENAS (Pham et al., ICML 2018), learnt from trial
rewards by `kerasnas.oracles.ControllerOracle` and from supernet paths' accuracies by
one-shot ENAS (`kerasnas.oneshot.enas`). This module imports neither.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from kerasnas import backend
from kerasnas.architecture import Scalar

if TYPE_CHECKING:
    from kerasnas.spaces.base import Decision

ALGORITHMS = ("reinforce", "ppo")


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """The LSTM policy's settings: its network and how it learns.

    `LSTMPolicy` and `kerasnas.oracles.ControllerOracle` take a `PolicyConfig`
    (`policy=`) and each of its fields as a keyword argument too
    (`ControllerOracle(space, batch_size=10)`); the defaults are declared here only.

    Args:
        units: LSTM units. Defaults to 64.
        temperature: Optional logit temperature.
        tanh_constant: Optional tanh logit clipping constant (ENAS uses 1.5-2.5).
        algorithm: `"reinforce"` or `"ppo"`. Defaults to `"reinforce"`.
        batch_size: Rewards per update. Defaults to 5.
        learning_rate: Adam learning rate. Defaults to 0.01 divided by the
            epochs per batch (1 for REINFORCE, `ppo_epochs` for PPO).
        baseline_decay: Decay of the moving-average baseline (and of the
            reward scale), in [0, 1). Defaults to 0.9.
        normalize_advantage: Whether advantages are divided by the moving
            root-mean-square deviation of the rewards from the baseline, so
            that learning does not depend on the rewards' scale (accuracies
            a few thousandths apart teach as much as losses far apart, and
            the entropy bonus keeps its weight). Defaults to True.
        entropy_weight: Weight of the entropy bonus. Defaults to 1e-3.
        grad_clip: Global gradient-norm clipping. Defaults to 5.
        ppo_epochs: PPO epochs over each batch. Defaults to 4.
        ppo_clip: PPO clipping epsilon. Defaults to 0.2.
        memory_weight: Weight of the controller-memory loss; 0 (default) turns it off.
        memory_size: Architectures kept for the memory loss. Defaults to 200.
    """

    units: int = 64
    temperature: float | None = None
    tanh_constant: float | None = None
    algorithm: str = "reinforce"
    batch_size: int = 5
    learning_rate: float | None = None
    baseline_decay: float = 0.9
    normalize_advantage: bool = True
    entropy_weight: float = 1e-3
    grad_clip: float = 5.0
    ppo_epochs: int = 4
    ppo_clip: float = 0.2
    memory_weight: float = 0.0
    memory_size: int = 200

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be 'reinforce' or 'ppo'. Received: algorithm={self.algorithm!r}."
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {self.batch_size}.")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1). Received: {self.baseline_decay}.")

    @classmethod
    def take(cls, config: PolicyConfig | None, keywords: dict[str, Any]) -> PolicyConfig:
        """`config` (None: the defaults) with the fields that `keywords` names set.

        Those fields are removed from `keywords`; the other keywords stay.

        Args:
            config: The settings to start from, or None for the defaults.
            keywords: Keyword arguments, some of which may be fields.
        """
        fields = [f.name for f in dataclasses.fields(cls) if f.name in keywords]
        return dataclasses.replace(config or cls(), **{f: keywords.pop(f) for f in fields})


def takes_policy_settings(init: Callable) -> Callable:
    """Shows `PolicyConfig`'s fields, with their defaults, in `init`'s signature.

    For a constructor that takes them through `**kwargs` (with
    `PolicyConfig.take`): `help()`, `inspect.signature` and the command line's
    defaults then see them as keyword arguments.
    """
    signature = inspect.signature(init)
    keyword = inspect.Parameter.KEYWORD_ONLY
    settings = [
        inspect.Parameter(f.name, keyword, default=f.default, annotation=f.type)
        for f in dataclasses.fields(PolicyConfig)
    ]
    rest = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    head = [p for p in signature.parameters.values() if p not in rest]
    init.__signature__ = signature.replace(parameters=[*head, *settings, *rest])
    return init


class PolicyNetwork:
    """An autoregressive LSTM that emits one softmax per decision of a space.

    Step t feeds the embedding of the choice made at step t-1 (a learned start
    vector at t = 0) into an LSTM cell and reads decision t's logits from the
    hidden state through its own dense head. Logits may be divided by a
    temperature and squashed as `tanh_constant * tanh(logits)`, as in ENAS.
    `LSTMPolicy` adds its learning.

    Args:
        decisions: The space's decisions, in order.
        config: The settings (`units`, `temperature`, `tanh_constant` are the
            network's); None: the defaults.
        memory: Whether to add the reconstruction heads of the controller
            memory loss (one dense head per decision on the final hidden state).
        seed: Seed of the weight initialisation.
    """

    def __init__(
        self,
        decisions: Sequence[Decision],
        config: PolicyConfig | None = None,
        memory: bool = False,
        seed: int = 0,
    ):
        config = config or PolicyConfig()
        self.decisions = tuple(decisions)
        self.sizes = [len(d.choices) for d in self.decisions]
        units = self.units = config.units
        self.temperature = config.temperature
        self.tanh_constant = config.tanh_constant
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
        self._sampler = backend.compiled(self._sample_steps, self.trainable_variables)

    # -- The network --------------------------------------------------------------
    @property
    def trainable_variables(self) -> list:
        """The network's variables: start vector, LSTM cell, embeddings, heads."""
        layers = [self.cell, *self.embeddings, *self.heads, *self.memory_heads]
        return [self.start] + [v for layer in layers for v in layer.trainable_variables]

    def _logits(self, h, t: int):
        logits = self.heads[t](h)
        if self.temperature:
            logits = logits / self.temperature
        if self.tanh_constant:
            logits = self.tanh_constant * ops.tanh(logits)
        return logits

    def _initial(self, n: int):
        x = ops.tile(ops.convert_to_tensor(self.start), [n, 1])
        state = [ops.zeros((n, self.units)), ops.zeros((n, self.units))]
        return x, state

    def sample(self, rng: np.random.Generator) -> tuple[list[int], float]:
        """Draws one architecture: its choice index per decision and log-probability.

        The randomness comes from `rng` (one uniform number per decision,
        inverted through the softmax's cumulative distribution), so a seeded
        search samples the same architectures every time.

        Args:
            rng: The generator to draw from.
        """
        u = rng.random(len(self.sizes)).astype("float32")
        choices, logp = self._sampler(u)
        return [int(c) for c in ops.convert_to_numpy(choices)], float(ops.convert_to_numpy(logp))

    def _sample_steps(self, u):
        x, state = self._initial(1)
        logp = ops.zeros(())
        choices = []
        for t in range(len(self.sizes)):
            h, state = self.cell(x, state)
            log_probs = ops.log_softmax(self._logits(h, t), axis=-1)[0]
            cdf = ops.cumsum(ops.exp(log_probs))
            below = ops.cast(ops.less(cdf, u[t] * cdf[-1]), "int32")
            c = ops.minimum(ops.sum(below), self.sizes[t] - 1)
            choices.append(c)
            logp = logp + ops.take(log_probs, c)
            x = self.embeddings[t](ops.reshape(c, [1]))
        return ops.stack(choices), logp

    def log_prob(self, choices: Any, with_memory: bool = False) -> tuple:
        """Teacher-forced pass over a batch of choice indices (n, decisions).

        Args:
            choices: Integer array of shape (n, decisions).
            with_memory: Also compute the memory heads' reconstruction loss.

        Returns:
            `(log_prob, entropy, final_hidden, memory_loss)`: per-architecture
            log-probability and summed entropy, the final hidden states, and
            the reconstruction loss of the memory heads (0 without them), as
            the backend's tensors (`keras.ops.convert_to_numpy` reads them).
        """
        choices = ops.convert_to_tensor(choices, dtype="int32")
        n = ops.shape(choices)[0]
        x, state = self._initial(n)
        logp = ops.zeros((n,))
        entropy = ops.zeros((n,))
        h = None
        for t in range(len(self.sizes)):
            h, state = self.cell(x, state)
            log_probs = ops.log_softmax(self._logits(h, t), axis=-1)
            logp = logp + ops.take_along_axis(log_probs, choices[:, t : t + 1], axis=1)[:, 0]
            entropy = entropy - ops.sum(ops.exp(log_probs) * log_probs, axis=1)
            x = self.embeddings[t](choices[:, t])
        memory_loss = ops.zeros(())
        if with_memory and self.memory_heads:
            losses = [
                ops.sparse_categorical_crossentropy(choices[:, t], head(h), from_logits=True)
                for t, head in enumerate(self.memory_heads)
            ]
            memory_loss = ops.mean(sum(losses[1:], losses[0])) / len(losses)
        return logp, entropy, h, memory_loss

    def get_weights(self) -> list[np.ndarray]:
        """The network's weights (not the optimizer's), in `trainable_variables` order."""
        return [np.asarray(v.numpy()) for v in self.trainable_variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Sets the network's weights from `get_weights()`'s list.

        Args:
            weights: One array per variable of `trainable_variables`.
        """
        variables = self.trainable_variables
        if len(weights) != len(variables):
            raise ValueError(
                f"The saved controller has {len(weights)} weight arrays; this one has "
                f"{len(variables)}. Was it saved with other controller settings?"
            )
        for v, w in zip(variables, weights, strict=True):
            v.assign(w)

    # -- Choices <-> decision values -------------------------------------------------
    def choice_values(self, choices: Sequence[int]) -> dict[str, Scalar]:
        """The decision values of one choice index per decision (active decisions only).

        Args:
            choices: One choice index per decision.
        """
        values: dict[str, Scalar] = {}
        for d, c in zip(self.decisions, choices, strict=True):
            if d.is_active(values):
                values[d.name] = d.choices[c]
        return values

    def choice_indices(self, values: Mapping[str, Scalar]) -> list[int]:
        """One choice index per decision of decision values (0 for inactive decisions).

        Args:
            values: Decision values.
        """
        return [d.choices.index(values[d.name]) if d.name in values else 0 for d in self.decisions]

    def sample_values(self, rng: np.random.Generator) -> dict[str, Scalar]:
        """Decision values of one architecture drawn from the policy.

        Args:
            rng: The generator to draw from.
        """
        return self.choice_values(self.sample(rng)[0])


class LSTMPolicy(PolicyNetwork):
    """The LSTM policy (a `PolicyNetwork`: `sample`, `log_prob`, weights) that learns from rewards.

    Learning (`observe`): rewards are batched; every `batch_size` of them make
    one update (`update`):

    ```
    advantage = (reward - baseline) / scale  # moving averages of the reward and of
                                             # its squared deviation (scale: its root)
    REINFORCE: minimise -mean(advantage * log p(arch)) - entropy_weight * entropy
    PPO: several epochs of the clipped surrogate objective on the batch
    ```

    plus, with `memory_weight > 0`, the controller-memory loss: the policy
    must reconstruct every choice of up to 32 architectures replayed from the
    last `memory_size` observed ones from its final hidden state.

    Args:
        decisions: As `PolicyNetwork`'s.
        policy: The settings (a `PolicyConfig`); None: the defaults.
        memory: Whether to add the reconstruction heads of the memory loss
            even when `memory_weight` is 0 (they are added when it is > 0).
        seed: Seed of the weight initialisation (and of the default `replay_rng`).
        replay_rng: Called for a generator when an update replays memory
            (e.g. an oracle's `rng`, so that a resumed search replays the
            same); by default one generator seeded by `seed`.
        **settings: Fields of `PolicyConfig` (`algorithm`, `batch_size`, ...),
            which replace those of `policy`.

    Each setting is also an attribute of the policy (`policy.batch_size`);
    `learning_rate` is the one used (its default worked out).
    """

    @takes_policy_settings
    def __init__(
        self,
        decisions: Sequence[Decision],
        policy: PolicyConfig | None = None,
        *,
        memory: bool = False,
        seed: int = 0,
        replay_rng: Callable[[], np.random.Generator] | None = None,
        **settings: Any,
    ):
        config = PolicyConfig.take(policy, settings)
        if settings:
            raise TypeError(
                f"LSTMPolicy got unexpected keyword arguments {sorted(settings)}; it takes "
                f"the fields of PolicyConfig: {[f.name for f in dataclasses.fields(config)]}."
            )
        super().__init__(decisions, config, bool(memory) or config.memory_weight > 0, seed)
        for field in dataclasses.fields(config):  # The settings, as attributes.
            setattr(self, field.name, getattr(config, field.name))
        if config.learning_rate is None:
            self.learning_rate = 0.01 / (config.ppo_epochs if config.algorithm == "ppo" else 1)
        self.normalize_advantage = bool(config.normalize_advantage)
        if replay_rng is None:
            generator = np.random.default_rng(seed)
            replay_rng = lambda: generator  # noqa: E731 - one stream for every replay.
        self.replay_rng = replay_rng
        # Gradients are clipped to a global norm of `grad_clip` by the optimizer.
        self.optimizer = keras.optimizers.Adam(self.learning_rate, global_clipnorm=self.grad_clip)
        self.optimizer.build(self.trainable_variables)
        self._train_step = backend.train_step(self._loss, self.trainable_variables, self.optimizer)
        self.baseline: float | None = None
        self.reward_scale: float | None = None  # Moving RMS deviation from the baseline.
        self.buffer: list[dict] = []  # rewarded samples waiting for an update
        self.memory: list[list[int]] = []  # replay buffer of observed choices
        self.updates = 0

    # -- Learning ------------------------------------------------------------------
    def observe(self, choices: Sequence[int], logp: float, reward: float) -> bool:
        """Adds a rewarded sample; makes an update when `batch_size` are waiting.

        Args:
            choices: The sample's choice index per decision.
            logp: Its log-probability when it was drawn (for PPO's ratio).
            reward: Its reward.

        Returns:
            Whether the policy was updated.
        """
        self.buffer.append({"choices": list(choices), "logp": float(logp), "reward": reward})
        self.memory = (self.memory + [list(choices)])[-self.memory_size :]
        if len(self.buffer) < self.batch_size:
            return False
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        self.update(batch)
        return True

    def update(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """One policy-gradient update on rewarded samples, and the baseline's.

        Args:
            batch: Samples `{"choices", "logp", "reward"}` (as `observe` keeps them).
        """
        rewards = np.array([s["reward"] for s in batch], dtype="float64")
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        deviation = rewards - self.baseline
        square = float(np.mean(deviation**2))
        if self.reward_scale is None:
            self.reward_scale = float(np.sqrt(square))
        decay = self.baseline_decay
        advantage = deviation
        if self.normalize_advantage:
            # A batch of equal rewards (no scale yet) teaches nothing either way.
            advantage = deviation / self.reward_scale if self.reward_scale > 0 else 0 * deviation
        advantage = np.asarray(advantage, dtype="float32")
        self.baseline = float(decay * self.baseline + (1 - decay) * rewards.mean())
        self.reward_scale = float(np.sqrt(decay * self.reward_scale**2 + (1 - decay) * square))
        choices = np.array([s["choices"] for s in batch], dtype="int32")
        old_logp = np.array([s["logp"] for s in batch], dtype="float32")
        memory = None
        if self.memory_weight > 0 and self.memory:
            pick = self.replay_rng().choice(
                len(self.memory), min(len(self.memory), 32), replace=False
            )
            memory = np.array([self.memory[i] for i in pick], dtype="int32")
        for _ in range(self.ppo_epochs if self.algorithm == "ppo" else 1):
            self._train_step(choices, advantage, old_logp, memory)
        self.updates += 1

    def _loss(self, choices, advantage, old_logp, memory):
        """The policy-gradient loss of a batch (plus the entropy bonus and the memory loss)."""
        logp, entropy, _, _ = self.log_prob(choices)
        if self.algorithm == "ppo":
            ratio = ops.exp(logp - old_logp)
            clipped = ops.clip(ratio, 1 - self.ppo_clip, 1 + self.ppo_clip)
            loss = -ops.mean(ops.minimum(ratio * advantage, clipped * advantage))
        else:
            loss = -ops.mean(advantage * logp)
        loss = loss - self.entropy_weight * ops.mean(entropy)
        if self.memory_weight > 0 and memory is not None:
            loss = loss + self.memory_weight * self.log_prob(memory, with_memory=True)[3]
        return loss

    # -- State ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The learning state besides the weights: baseline, scale, buffer, memory, updates."""
        return {
            "baseline": self.baseline,
            "reward_scale": self.reward_scale,
            "buffer": self.buffer,
            "memory": self.memory,
            "updates": self.updates,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state()`'s dict (missing keys: a fresh policy's values).

        Args:
            state: The saved state.
        """
        self.baseline = state.get("baseline")
        self.reward_scale = state.get("reward_scale")
        self.buffer = state.get("buffer", [])
        self.memory = state.get("memory", [])
        self.updates = state.get("updates", 0)
