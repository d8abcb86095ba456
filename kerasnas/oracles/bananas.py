"""BANANAS: Bayesian optimisation with a neural ensemble predictor (White, Neiswanger &
Savani, "BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture
Search", AAAI 2021)."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from keras_tuner.engine import trial as trial_module

from kerasnas import proxies
from kerasnas.architecture import Architecture
from kerasnas.cli.registry import Flag
from kerasnas.errors import OutOfSpaceError
from kerasnas.oracles._predictor import EnsemblePredictor
from kerasnas.oracles.base import NasOracle, SearchContext
from kerasnas.proxies.architectures import first_examples, score_architecture
from kerasnas.spaces.base import NEIGHBOUR_LIMIT, SearchSpace

log = logging.getLogger(__name__)

ACQUISITIONS = ("its", "ucb")
ENCODINGS = ("auto", "paths", "one_hot")
#: Training examples the proxy features are computed on.
PROXY_BATCH = 64
#: Proxies whose values span orders of magnitude: the predictor sees log10(1 + value).
_COUNTS = ("params", "flops", "synflow")


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
    its decisions (`encode_one_hot`, every space). With `proxy_features`,
    each architecture's zero-cost proxies (`kn.proxies`, of the untrained
    network on the first 64 training examples; counts as log10(1 + value))
    are appended, standardised by the finished trials' mean and spread at
    each fit: what the predictor knows before any training, which matters
    most while few trials are finished. Every candidate is then built and
    scored (a fraction of a second each on a CPU, cached per architecture).
    The ensemble is one Keras model holding the members side by side
    (`kerasnas/oracles/_predictor.py`), re-initialised from the oracle's
    generator at every fit.

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
        proxy_features: Names of `kn.proxies.PROXIES` given to the predictor
            beside the encoding, e.g. `("naswot", "flops")`. They need the
            training data, which kerasnas's trial runner gives the oracle
            (`kn.Search`, `kn.NasTuner`). Defaults to none.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            and keras-tuner `Oracle` arguments.
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "bananas_proxies": Flag(
            "proxy_features",
            type=list,
            help="Comma-separated zero-cost proxies given to the predictor beside the "
            f"encoding, among {', '.join(proxies.PROXIES)} (e.g. naswot,flops)",
        )
    }

    # Its `prepare` only keeps training examples for the optional proxy features.
    runs_on_tables: ClassVar[bool | None] = True

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
        proxy_features: Sequence[str] = (),
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
        proxy_features = proxies.measures.check_proxies(proxy_features) if proxy_features else ()
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
        self.proxy_features = proxy_features  # Checked: each name once, in order.
        self._batch: tuple[np.ndarray, np.ndarray] | None = None  # For the proxies.
        self._proxies: dict[str, np.ndarray] = {}  # hash -> proxy features (a cache).
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
        return self.finished_trials(by_start=True)

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
        ranked = [archs[i] for i in np.argsort(-scores, kind="stable")]
        candidates = self.candidates(ranked[: self.parents], rng)
        if not candidates:
            return []
        inputs = np.stack([self.encode(a) for a in candidates])
        if self.proxy_features:
            rows, inputs = self.with_proxies(archs, rows, candidates, inputs)
        self.predictor().fit(rows, targets, rng)
        predictions = self.predictor().predict(inputs)
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
    def prepare(self, context: SearchContext) -> None:
        """Keeps the first training examples, which the proxy features are computed on."""
        if self.proxy_features:
            self._batch = first_examples(context.train, PROXY_BATCH)

    def with_proxies(self, archs: list, rows: np.ndarray, candidates: list, inputs: np.ndarray):
        """`rows` and `inputs` with the standardised proxy features of `archs`, `candidates`."""
        known, new = self.proxy_values(archs), self.proxy_values(candidates)
        finite = np.where(np.isfinite(known), known, np.nan)
        mean, spread = np.nanmean(finite, axis=0), np.nanstd(finite, axis=0)
        mean, spread = np.nan_to_num(mean), np.where(spread > 0, spread, 1.0)

        def standardised(values: np.ndarray) -> np.ndarray:
            z = (values - mean) / spread
            return np.clip(np.nan_to_num(z, nan=-3.0, posinf=3.0, neginf=-3.0), -3.0, 3.0)

        return (np.hstack([rows, standardised(known)]), np.hstack([inputs, standardised(new)]))

    def proxy_values(self, archs: list) -> np.ndarray:
        """The proxy features of `archs` (one row each), computed once per architecture."""
        if self._batch is None:
            raise ValueError(
                "proxy_features are computed on the training data, which kerasnas's trial "
                "runner gives the oracle in its prepare hook (kn.Search, kn.NasTuner); a plain "
                "keras_tuner.Tuner or a tabular benchmark has none. Leave proxy_features out."
            )
        start, missing = time.perf_counter(), 0
        for arch in archs:
            key = arch.hash()
            if key not in self._proxies:
                values = score_architecture(
                    self.space, arch, self._batch, self.proxy_features,
                    weights_seed=((self.seed or 0) * 7919 + int(key[:8], 16)) % 2**31,
                    seed=self.seed or 0,
                )  # fmt: skip
                row = [values[name] for name in self.proxy_features]
                self._proxies[key] = np.array([
                    np.log10(1.0 + max(v, 0.0)) if name in _COUNTS else v
                    for name, v in zip(self.proxy_features, row, strict=True)
                ])  # fmt: skip
                missing += 1
        if missing:
            names, took = "+".join(self.proxy_features), time.perf_counter() - start
            log.info("bananas: proxies %s of %d architectures in %.1fs", names, missing, took)
        return np.stack([self._proxies[a.hash()] for a in archs])

    def predictor(self) -> EnsemblePredictor:
        if self._predictor is None:
            self._predictor = EnsemblePredictor(
                len(self.encode(self.space.sample(np.random.default_rng(0))))
                + len(self.proxy_features),
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
