"""Local search with restarts (White, Nolen & Savani, "Exploring the Loss Landscape in
Neural Architecture Search", UAI 2021; first as "Local search is state of the art for
NAS benchmarks", 2020)."""

from __future__ import annotations

from typing import Any

from keras_tuner.engine import trial as trial_module

from kerasnas.architecture import Architecture
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import SearchSpace

_FINISHED = (
    trial_module.TrialStatus.COMPLETED,
    trial_module.TrialStatus.FAILED,
    trial_module.TrialStatus.INVALID,
)


class LocalSearchOracle(NasOracle):
    """Local search: climb through one-decision neighbours; restart at a local optimum.

    ```
    the first `initial_trials` trials: random architectures      # run 0
    then, for each trial:
        current = the best finished architecture of the current run
        if current has unvisited neighbours (space.neighbours):
            propose one of them, drawn at random              # a better one becomes current
        elif all its neighbours finished, none better:        # a local optimum
            propose a random architecture next to no architecture of
            the run: it starts a new run (a restart)
        else:                                                 # neighbours still running
            propose an unvisited neighbour of the run's next best architecture
    ```

    The runs, the current point and what was visited are derived from the
    trial store each time, in trial order: a trial belongs to the current run
    when it is a neighbour of one of the run's architectures, and starts a new
    run otherwise (restarts are drawn away from the run's neighbourhood, so
    the two cannot be confused). A resumed search, or the chief of a
    chief/worker search, so proposes what an uninterrupted one would; with
    several trials in flight, the next unvisited neighbour is proposed while
    the others run. Neighbours are the space's `neighbours(arch)`: every
    change of one active decision, isomorphic architectures counted once.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        initial_trials: Random trials before the first climb, which starts
            from the best of them. Defaults to 1.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    def __init__(self, space: SearchSpace, initial_trials: int = 1, **kwargs: Any):
        if isinstance(initial_trials, bool) or not isinstance(initial_trials, int):
            raise ValueError(f"initial_trials must be an integer. Received: {initial_trials!r}.")
        if initial_trials < 1:
            raise ValueError(f"initial_trials must be >= 1. Received: {initial_trials}.")
        super().__init__(space, **kwargs)
        self.initial_trials = initial_trials
        # Caches (values never change once proposed): trial id -> hash, hash -> architecture,
        # hash -> its neighbours.
        self._hashes: dict[str, str] = {}
        self._archs: dict[str, Architecture] = {}
        self._neighbours: dict[str, list[Architecture]] = {}

    # -- The walk, read from the trial store ------------------------------------
    def _hash(self, trial: trial_module.Trial) -> str:
        if trial.trial_id not in self._hashes:
            arch = self.architecture(trial)
            self._archs.setdefault(arch.hash(), arch)
            self._hashes[trial.trial_id] = arch.hash()
        return self._hashes[trial.trial_id]

    def neighbours_of(self, key: str) -> list[Architecture]:
        """The neighbours of the architecture of hash `key` (cached)."""
        if key not in self._neighbours:
            self._neighbours[key] = list(self.space.neighbours(self._archs[key]))
        return self._neighbours[key]

    def current_run(self) -> tuple[list[trial_module.Trial], set[str]]:
        """The trials of the current run, in trial order, and the hashes of their neighbours."""
        run: list[trial_module.Trial] = []
        around: set[str] = set()
        for position, trial_id in enumerate(self.start_order):
            trial = self.trials.get(trial_id)
            if trial is None:
                continue
            key = self._hash(trial)
            if position >= self.initial_trials and key not in around:
                run, around = [], set()  # A restart.
            run.append(trial)
            around.update(a.hash() for a in self.neighbours_of(key))
        return run, around

    def _ranked(self, run: list[trial_module.Trial]) -> list[trial_module.Trial]:
        """The run's completed trials, best first (ties: the earlier), then the others."""
        sign = -1 if self.objective.direction == "max" else 1
        scored = [t for t in run if t.status == trial_module.TrialStatus.COMPLETED]
        scored = [t for t in scored if t.score is not None]
        best = sorted(scored, key=lambda t: sign * t.score)  # Stable: ties keep trial order.
        return best + [t for t in run if t not in best]

    def current(self) -> trial_module.Trial | None:
        """The current point: the best finished trial of the current run (or its first)."""
        run, _ = self.current_run()
        return self._ranked(run)[0] if run else None

    # -- Proposals ----------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        if len(self.start_order) < self.initial_trials:
            return self.propose_random(rng)
        run, around = self.current_run()
        ranked = self._ranked(run)
        finished = {self._hash(t) for t in self.trials.values() if t.status in _FINISHED}
        for rank, point in enumerate(ranked):
            neighbours = self.neighbours_of(self._hash(point))
            fresh = [a for a in neighbours if self.is_new(a)]
            if fresh:
                return self.propose(fresh[rng.integers(len(fresh))])
            if rank == 0 and all(a.hash() in finished for a in neighbours):
                break  # A local optimum: every neighbour evaluated, none better.
        return self._restart(rng, around)

    def _restart(self, rng, around: set[str]) -> dict[str, Any]:
        """A random unvisited architecture off the current run's neighbourhood."""
        for _ in range(self.max_collisions):
            arch = self.space.sample(rng)
            if self.is_new(arch) and arch.hash() not in around:
                return self.propose(arch)
        return self.propose_random(rng)
