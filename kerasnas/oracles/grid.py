"""Grid search: every architecture of a small space, once, in a fixed order."""

from __future__ import annotations

from typing import Any

from kerasnas.architecture import Architecture
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import ENUMERATION_LIMIT, SearchSpace


class GridSearchOracle(NasOracle):
    """Exhaustive enumeration: the baseline every NAS study starts from.

    The architectures are the space's decision combinations in
    `itertools.product` order of its decisions (the order `space.decisions`
    lists them, each decision's choices in their listed order), with
    inactive decisions dropped and isomorphic architectures (same canonical
    hash) kept once, at their first place. Each trial is the next
    architecture of that list that no trial has yet; the search stops
    cleanly when the list is done or `max_trials` is reached. The order does
    not depend on the seed, and what is left is read from the trial store,
    so a resumed search (or the chief of a chief/worker search) goes on
    where it stopped.

    A space with more than `kerasnas.spaces.base.ENUMERATION_LIMIT` decision
    combinations is refused when the oracle is made, with its size.

    Works as a plain keras-tuner oracle too:
    `keras_tuner.Tuner(oracle=GridSearchOracle(space, ...), hypermodel=space)`.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to enumerate.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    def __init__(self, space: SearchSpace, **kwargs: Any):
        if isinstance(space, SearchSpace) and space.cardinality() > ENUMERATION_LIMIT:
            raise ValueError(
                f"strategy='grid' enumerates every architecture, but this "
                f"{type(space).__name__} has {space.cardinality():,} decision combinations "
                f"(more than the {ENUMERATION_LIMIT:,} that can be enumerated). Make the space "
                "smaller (fewer ops, nodes or blocks) or use another strategy, e.g. 'random'."
            )
        super().__init__(space, **kwargs)
        self._grid: list[Architecture] | None = None
        self._cursor = 0  # Every architecture before it has a trial.

    def grid(self) -> list[Architecture]:
        """The distinct architectures of the space, in enumeration order."""
        if self._grid is None:
            seen: set[str] = set()
            self._grid = []
            for arch in self.space.enumerate():
                if arch.hash() not in seen:
                    seen.add(arch.hash())
                    self._grid.append(arch)
        return self._grid

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        grid = self.grid()
        self._cursor, _, arch = self.next_new(grid, self._cursor, lambda a: a)
        if arch is None:
            return self.stop(
                f"the grid is done: all {len(grid)} distinct architectures have been tried"
            )
        return self.propose(arch)
