"""Regularized (aging) evolution, Real et al. 2019."""

from __future__ import annotations

from typing import Any

from keras_tuner.engine import trial as trial_module

from kerasnas.cli.registry import Flag
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import SearchSpace


class EvolutionOracle(NasOracle):
    """Regularized evolution (Real, Aggarwal, Huang & Le, "Regularized
    Evolution for Image Classifier Architecture Search", AAAI 2019).

    ```
    the first `population_size` trials: random architectures
    then, for each trial:
        population = the `population_size` most recently finished trials
        sample `sample_size` of them; the parent is the best of the sample
        child = space.mutate(parent)   # one decision for most spaces
    ```

    Keeping only the most recently finished trials is the "aging": every
    architecture dies after `population_size` newer ones, however good, which
    regularizes against lucky evaluations. The population is read from the
    trial store, so a resumed search or one with several trials in flight
    (chief/worker mode) uses exactly what has finished. Mutation is the
    space's `mutate` (one decision changed for most spaces; NAS-Bench-101
    follows its benchmark and flips each edge and op with some probability),
    so it works on every space. A child that was
    already tried is mutated again (up to `max_collisions` times) and else
    replaced by a random new architecture.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        population_size: P, the population kept alive. Defaults to 20.
        sample_size: S, the tournament size. Defaults to 5.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "population_size": Flag(
            "population_size", type=int, lower_bound=2, help="Population size P"
        ),
        "sample_size": Flag(
            "sample_size",
            type=int,
            lower_bound=1,
            help="Tournament size S, at most --population_size",
        ),
    }

    def __init__(
        self, space: SearchSpace, population_size: int = 20, sample_size: int = 5, **kwargs: Any
    ):
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2. Received: {population_size}.")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must lie in [1, population_size={population_size}]. "
                f"Received: {sample_size}."
            )
        super().__init__(space, **kwargs)
        self.population_size = population_size
        self.sample_size = sample_size

    def population(self) -> list[trial_module.Trial]:
        """The most recently finished completed trials, oldest first."""
        return self.finished_trials()[-self.population_size :]

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        population = self.population()
        if len(self.start_order) < self.population_size or not population:
            return self.propose_random(rng)
        better = max if self.objective.direction == "max" else min
        for _ in range(self.max_collisions):
            size = min(self.sample_size, len(population))
            contenders = [population[i] for i in rng.choice(len(population), size, replace=False)]
            parent = better(contenders, key=lambda t: t.score)
            child = self.space.mutate(self.architecture(parent), rng)
            if self.is_new(child):
                return self.propose(child)
        return self.propose_random(rng)
