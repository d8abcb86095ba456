"""Random search: uniform sampling that never repeats an architecture."""

from __future__ import annotations

from typing import Any

from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import ENUMERATION_LIMIT


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

    def __init__(self, space, max_collisions: int = 50, **kwargs: Any):
        super().__init__(space, **kwargs)
        self.max_collisions = max_collisions

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        for _ in range(self.max_collisions):
            arch = self.space.sample(rng)
            if self.is_new(arch):
                return self.propose(arch)
        if self.space.cardinality() <= ENUMERATION_LIMIT:
            fresh = {a.hash(): a for a in self.space.enumerate() if self.is_new(a)}
            if fresh:
                keys = sorted(fresh)
                return self.propose(fresh[keys[rng.integers(len(keys))]])
            return self.stop(
                f"the search space is exhausted: all {len(self._tried_so_far)} "
                "distinct architectures have been tried"
            )
        return self.stop(
            f"{self.max_collisions} random draws in a row were architectures "
            "already tried; the space looks exhausted"
        )
