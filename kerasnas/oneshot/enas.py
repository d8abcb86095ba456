"""ENAS (Pham et al., ICML 2018): an LSTM policy picks the supernet's paths and learns from them."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from kerasnas.oneshot.common import (
    Context,
    Method,
    Ranked,
    Trained,
    bad_option,
    distinct_candidates,
    is_integer,
    is_number,
    log,
    rank_by_score,
)
from kerasnas.policy import ALGORITHMS, LSTMPolicy, PolicyConfig

#: ENAS's settings of the policy (Pham et al.): logit temperature, tanh constant, learning rate.
POLICY = PolicyConfig(temperature=5.0, tanh_constant=2.5, learning_rate=3.5e-3)


@dataclasses.dataclass
class EnasOptions:
    """Options of the `"enas"` method.

    Args:
        controller_steps: Policy samples rewarded after each epoch (each on a
            validation batch). Defaults to 50.
        controller_batch: Rewards per policy update. Defaults to 10.
        entropy_weight: Weight of the policy's entropy bonus. Defaults to 1e-4.
        algorithm: `"reinforce"` or `"ppo"`. Defaults to `"reinforce"`.
    """

    controller_steps: int = 50
    controller_batch: int = 10
    entropy_weight: float = 1e-4
    algorithm: str = "reinforce"

    def __post_init__(self) -> None:
        if not (is_integer(self.controller_steps) and self.controller_steps >= 1):
            raise bad_option("controller_steps", self.controller_steps, "an integer >= 1")
        if not (is_integer(self.controller_batch) and self.controller_batch >= 1):
            raise bad_option("controller_batch", self.controller_batch, "an integer >= 1")
        if not is_number(self.entropy_weight):
            raise bad_option("entropy_weight", self.entropy_weight, "a number")
        if self.algorithm not in ALGORITHMS:
            raise bad_option("algorithm", self.algorithm, f"one of {list(ALGORITHMS)}")


def train(context: Context, options: EnasOptions) -> Trained:
    """Trains the shared weights and the policy in turn; ranks the policy's samples.

    Each epoch trains the shared weights for one pass over the training data,
    each step on a path the policy samples, then trains the policy for
    `controller_steps` samples whose reward is the path's accuracy on a
    validation batch (BatchNorm on the batch's statistics, as in ENAS). The
    candidates are then drawn from the policy and ranked by one-shot score.

    Args:
        context: The run's context.
        options: The method's options.
    """
    supernet, trainer, rng = context.supernet, context.trainer, context.rng
    policy = LSTMPolicy(
        supernet.space.decisions,
        POLICY,
        seed=context.seed,
        algorithm=options.algorithm,
        batch_size=options.controller_batch,
        entropy_weight=options.entropy_weight,
    )
    steps, epochs = options.controller_steps, context.epochs

    def sampler(step: int, total: int, rng: np.random.Generator):
        path = supernet.path(policy.sample_values(rng))
        return path, path

    val_batches = list(context.validation.repeat().take(steps * epochs).as_numpy_iterator())
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(epochs):
        start = time.perf_counter()
        step, loss, acc = trainer.train_epoch(context.train, sampler, rng, step, context.total)
        rewards = []
        for i in range(steps):
            x, y = val_batches[epoch * steps + i]
            choices, logp = policy.sample(rng)
            path = supernet.path(policy.choice_values(choices))
            logits = trainer.logits(x, path, training=True)
            reward = float(np.mean(np.argmax(logits.numpy(), -1) == np.reshape(y, -1)))
            policy.observe(choices, logp, reward)
            rewards.append(reward)
        record = {
            "epoch": epoch + 1,
            "loss": loss,
            "accuracy": acc,
            "reward": float(np.mean(rewards)),
            "time": time.perf_counter() - start,
        }
        history.append(record)
        log(
            context.progress,
            f"enas epoch {epoch + 1}/{epochs} loss={loss:.4f} accuracy={acc:.4f} "
            f"controller_reward={record['reward']:.4f} time={record['time']:.1f}s",
        )

    def rank() -> Ranked:
        paths = distinct_candidates(
            supernet, lambda: supernet.indices(policy.sample_values(rng)), context.num_candidates
        )
        return rank_by_score(context, paths)

    return Trained(history, rank)


METHOD = Method("enas", EnasOptions, train)
