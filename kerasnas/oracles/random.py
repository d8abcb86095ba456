"""Random search: uniform sampling that never repeats an architecture."""

from __future__ import annotations

from typing import Any

from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import SearchSpace


class RandomSearchOracle(NasOracle):
    """Samples every decision uniformly; skips architectures already tried.

    Repeats are detected by the architecture's canonical hash, so a cell that
    is isomorphic to one already trained is not trained again. When
    `max_collisions` draws in a row are repeats, a small space (at most
    `kerasnas.spaces.base.ENUMERATION_LIMIT` decision combinations) is
    enumerated to find any architecture left; when none is left, or a large
    space keeps giving repeats, the search stops cleanly.

    Works as a plain keras-tuner oracle too:
    `keras_tuner.Tuner(oracle=RandomSearchOracle(space, ...), hypermodel=space)`.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        max_collisions: Repeats drawn in a row before looking further.
            Defaults to 50.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    def __init__(self, space: SearchSpace, max_collisions: int = 50, **kwargs: Any):
        super().__init__(space, **kwargs)
        self.max_collisions = max_collisions

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        return self.propose_random(self.rng())
