"""BANANAS: Bayesian optimisation with a neural ensemble predictor (White, Neiswanger &
Savani, "BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture
Search", AAAI 2021)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas.architecture import Architecture, OutOfSpaceError
from kerasnas.oracles._predictor import EnsemblePredictor
from kerasnas.oracles.base import NasOracle
from kerasnas.spaces.base import NEIGHBOUR_LIMIT, SearchSpace

log = logging.getLogger(__name__)

ACQUISITIONS = ("its", "ucb")
ENCODINGS = ("auto", "paths", "one_hot")


class BananasOracle(NasOracle):
    """BANANAS: an ensemble of MLPs predicts scores; its spread drives the acquisition.

    ```
    the first `initial_trials` trials: random architectures
    then, whenever the queue of proposals is empty:
        fit `ensemble_size` MLPs on (encoding, standardised score) of the finished trials
        candidates = for each of the `parents` best architectures, `neighbours` of its
                     one-decision changes (`space.neighbours`) and `mutations` mutations;
                     + `random_candidates` random ones; all unvisited
        acquisition per candidate, from the ensemble's mean m and spread s:
            "its" (independent Thompson sampling): a draw from N(m, s^2)
            "ucb": m + ucb_beta * s
        queue the `k` candidates of highest acquisition
    each trial: the next architecture of the queue
    ```

    Architectures are encoded by the space's path encoding (`encode_paths`,
    the paper's: one feature per input-to-output path of ops) when it has one
    (NASNet, NAS-Bench-101 and -201 cells), else by the one-hot encoding of
    its decisions (`encode_one_hot`, every space). The ensemble is one Keras
    model holding the members side by side (`kerasnas/oracles/_predictor.py`),
    re-initialised from the oracle's generator at every fit.

    The queue is part of the oracle's saved state, and every fit is a function
    of the finished trials (in trial order) and of the oracle's saved random
    draws: a resumed search proposes what an uninterrupted one would, and a
    search whose state was lost re-fits. With several trials in flight
    (chief/worker mode) workers take the queued proposals of one fit, and the
    next fit uses every trial finished by then.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        initial_trials: Random trials before the first fit. Defaults to 10.
        k: Proposals queued per fit. Defaults to 10.
        ensemble_size: MLPs in the ensemble. Defaults to 5.
        acquisition: `"its"` (independent Thompson sampling, the default)
            or `"ucb"` (upper confidence bound).
        ucb_beta: Weight of the spread in `"ucb"`. Defaults to 1.
        encoding: `"auto"` (paths when the space has them, else one-hot),
            `"paths"` or `"one_hot"`. Defaults to `"auto"`.
        parents: Best architectures whose mutations are candidates. Defaults to 10.
        mutations: Mutations drawn of each parent (`space.mutate`). Defaults to 10.
        neighbours: One-decision changes of each parent among the candidates
            (all when it has fewer; drawn at random from its first 1000
            otherwise). Defaults to 30: every neighbour on the shared tables'
            spaces, so the best architectures' surroundings are searched
            exhaustively.
        random_candidates: Random architectures among the candidates. Defaults to 20.
        hidden: Units of the MLPs' hidden layers. Defaults to (32, 32).
        train_steps: Adam steps (batches of 32) per fit. Defaults to 200.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    def __init__(
        self,
        space: SearchSpace,
        initial_trials: int = 10,
        k: int = 10,
        ensemble_size: int = 5,
        acquisition: str = "its",
        ucb_beta: float = 1.0,
        encoding: str = "auto",
        parents: int = 10,
        mutations: int = 10,
        neighbours: int = 30,
        random_candidates: int = 20,
        hidden: Sequence[int] = (32, 32),
        train_steps: int = 200,
        **kwargs: Any,
    ):
        for name, value, low in (
            ("initial_trials", initial_trials, 2),
            ("k", k, 1),
            ("ensemble_size", ensemble_size, 2),
            ("parents", parents, 1),
            ("mutations", mutations, 0),
            ("neighbours", neighbours, 0),
            ("random_candidates", random_candidates, 0),
            ("train_steps", train_steps, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}. Received: {name}={value!r}.")
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"acquisition must be one of {ACQUISITIONS}. Received: {acquisition!r}."
            )
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}. Received: {encoding!r}.")
        if encoding == "paths" and not hasattr(space, "encode_paths"):
            raise ValueError(
                f"encoding='paths' needs a space with a path encoding (encode_paths); "
                f"{type(space).__name__} has none. Use encoding='one_hot' or 'auto'."
            )
        hidden = tuple(hidden)
        if not hidden or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden
        ):
            raise ValueError(f"hidden must be positive layer widths. Received: {hidden!r}.")
        if mutations + neighbours + random_candidates < 1:
            raise ValueError(
                "mutations, neighbours and random_candidates cannot all be 0: no candidates."
            )
        super().__init__(space, **kwargs)
        self.initial_trials = initial_trials
        self.k = k
        self.ensemble_size = ensemble_size
        self.acquisition = acquisition
        self.ucb_beta = float(ucb_beta)
        self.encoding = (
            ("paths" if hasattr(space, "encode_paths") else "one_hot")
            if encoding == "auto"
            else encoding
        )
        self.parents = parents
        self.mutations = mutations
        self.neighbours = neighbours
        self.random_candidates = random_candidates
        self.hidden = hidden
        self.train_steps = train_steps
        self._queue: list[dict[str, Any]] = []  # Trial values proposed by the last fit.
        self._features: dict[str, np.ndarray] = {}  # trial id -> encoding (a cache).
        self._predictor: EnsemblePredictor | None = None

    # -- Proposals ----------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        rng = self.rng()
        if len(self.start_order) < self.initial_trials:
            return self.propose_random(rng)
        while self._queue:
            arch = self.space.decode(self._queue.pop(0))
            if self.is_new(arch):
                return self.propose(arch)
        finished = self.finished()
        if len(finished) < 2:  # Trials in flight, too few finished to fit on.
            return self.propose_random(rng)
        self._queue = [self.space.encode(a) for a in self.select(finished, rng)]
        if not self._queue:
            return self.propose_random(rng)
        return self.propose(self.space.decode(self._queue.pop(0)))

    def finished(self) -> list[trial_module.Trial]:
        """The completed trials with a score, in trial order."""
        trials = [self.trials[t] for t in self.start_order if t in self.trials]
        return [
            t
            for t in trials
            if t.status == trial_module.TrialStatus.COMPLETED and t.score is not None
        ]

    def select(self, finished: list[trial_module.Trial], rng: np.random.Generator) -> list:
        """Fits the ensemble on `finished` and returns the `k` best candidates to try."""
        archs = [self.architecture(t) for t in finished]
        sign = 1.0 if self.objective.direction == "max" else -1.0
        scores = sign * np.array([t.score for t in finished], dtype=np.float64)
        targets = (scores - scores.mean()) / (scores.std() or 1.0)
        for trial, arch in zip(finished, archs, strict=True):
            if trial.trial_id not in self._features:
                self._features[trial.trial_id] = self.encode(arch)
        rows = np.stack([self._features[t.trial_id] for t in finished])
        self.predictor().fit(rows, targets, rng)
        ranked = [archs[i] for i in np.argsort(-scores, kind="stable")]
        candidates = self.candidates(ranked[: self.parents], rng)
        if not candidates:
            return []
        predictions = self.predictor().predict(np.stack([self.encode(a) for a in candidates]))
        mean, spread = predictions.mean(axis=1), predictions.std(axis=1)
        if self.acquisition == "its":
            value = rng.normal(mean, spread)
        else:
            value = mean + self.ucb_beta * spread
        order = np.argsort(-value, kind="stable")[: self.k]
        log.debug("bananas: %d candidates, fitted on %d trials", len(candidates), len(finished))
        return [candidates[i] for i in order]

    def candidates(self, parents: list[Architecture], rng: np.random.Generator) -> list:
        """Unvisited, distinct mutations of `parents` and random architectures, in draw order."""
        seen: set[str] = set()
        out: list[Architecture] = []

        def add(arch: Architecture) -> None:
            if arch.hash() not in seen and self.is_new(arch):
                seen.add(arch.hash())
                out.append(arch)

        for parent in parents:
            if self.neighbours:
                near = list(itertools.islice(self.space.neighbours(parent), NEIGHBOUR_LIMIT))
                for i in rng.permutation(len(near))[: self.neighbours]:
                    add(near[i])
            for _ in range(self.mutations):
                try:
                    add(self.space.mutate(parent, rng))
                except OutOfSpaceError:
                    break  # No decision of the parent can change.
        for _ in range(self.random_candidates):
            add(self.space.sample(rng))
        return out

    # -- The predictor ------------------------------------------------------------
    def predictor(self) -> EnsemblePredictor:
        if self._predictor is None:
            self._predictor = EnsemblePredictor(
                len(self.encode(self.space.sample(np.random.default_rng(0)))),
                members=self.ensemble_size,
                hidden=self.hidden,
                steps=self.train_steps,
            )
        return self._predictor

    def encode(self, arch: Architecture) -> np.ndarray:
        """The predictor's input for `arch`: its path or one-hot encoding."""
        if self.encoding == "paths":
            return self.space.encode_paths(arch)
        return self.space.encode_one_hot(arch)

    # -- State --------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "queue": [dict(v) for v in self._queue]}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._queue = [dict(v) for v in state.get("queue", [])]
