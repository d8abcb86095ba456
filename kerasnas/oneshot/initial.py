"""A one-shot trial's model: the candidate the supernet exported, with its weights.

`kerasnas.oracles.OneShotOracle.model_for_trial` calls `load_candidate` for
trials that start from the supernet's weights (`init="supernet"`).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import keras_tuner


def load_candidate(path: str, space: Any, context: Any) -> keras.Model:
    """The exported candidate at `path`, compiled like the space's models.

    Args:
        path: The `.keras` file the oracle exported when it ranked.
        space: The trial's `SearchSpace` (`space.compile_model` compiles it).
        context: The runner's `kerasnas.oracles.TrialContext`; the trial
            records `inherited=1`.
    """
    if not os.path.exists(path):
        raise keras_tuner.errors.FailedTrialError(
            f"The model this trial starts from, {path}, is missing; the one-shot "
            "files of the project were moved or deleted. Search again with "
            "overwrite=True."
        )
    if context.training:
        context.record(metrics={"inherited": 1.0})
    with context.scope():
        model = keras.models.load_model(path, compile=False)
        return space.compile_model(model)
