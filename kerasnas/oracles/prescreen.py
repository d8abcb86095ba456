"""Pre-screening: many architectures scored untrained by zero-cost proxies; the best train."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from kerasnas import proxies
from kerasnas._io import read_json, write_json
from kerasnas.architecture import Architecture
from kerasnas.cli.registry import Flag
from kerasnas.oracles.base import NasOracle, SearchContext
from kerasnas.proxies.architectures import first_examples, score_architecture
from kerasnas.spaces.base import SearchSpace

log = logging.getLogger(__name__)

#: The proxies `PrescreenOracle` can rank by: one of `kn.proxies.PROXIES`, or "vote".
RANKINGS = ("vote", *proxies.PROXIES)


class PrescreenOracle(NasOracle):
    """Zero-cost pre-screening: score a large pool untrained, train only the best.

    ```
    prepare:  draw `pool_size` distinct architectures of the space; build each
              (untrained) and score it with a zero-cost proxy of `kn.proxies`
              on one batch of the training data (`proxy`: NASWOT by default,
              another proxy, or the rank vote of `vote_proxies`)
    trials:   the pool's architectures, best score first
    ```

    The pool's scores cost well under a second per architecture on a CPU
    (`kn.proxies`), a small share of one training; they count against the
    search's `time_budget`. The ranking is saved with the oracle's state and
    in `prescreen.json` in the project, so a resumed search does not score
    again. With `halving=kn.Halving(...)` the best-scored architectures
    then race through successive halving.

    Args:
        space: The `kerasnas.spaces.SearchSpace` to search.
        pool_size: Architectures drawn and scored. Defaults to 500.
        proxy: What ranks the pool: one of `kn.proxies.PROXIES`, or
            `"vote"` (the mean rank over `vote_proxies`). Defaults to
            `"naswot"`, the proxy that ranked best on every ground truth of
            `benchmarks/ranking.py` (docs/cheap_evaluation.md).
        vote_proxies: The proxies of the vote. Defaults to
            `kn.proxies.VOTE_PROXIES`.
        batch_size: Training examples the proxies see. Defaults to 64.
        **kwargs: `NasOracle` arguments: `objective`, `max_trials`, `seed`,
            `halving`, ...
    """

    #: Command-line flags (`python -m kerasnas`) -> the constructor arguments they set.
    cli_flags = {
        "prescreen_pool": Flag(
            "pool_size", type=int, lower_bound=1, help="Architectures scored untrained"
        ),
        "prescreen_proxy": Flag(
            "proxy",
            type=str,
            choices=("vote", *proxies.PROXIES),
            help="The zero-cost proxy that ranks the pool (vote: the mean rank of several)",
        ),
    }

    needs_runner = True  # The pool is scored in `prepare`, which the runner calls.

    def __init__(
        self,
        space: SearchSpace,
        pool_size: int = 500,
        proxy: str = "naswot",
        vote_proxies: tuple[str, ...] = proxies.VOTE_PROXIES,
        batch_size: int = 64,
        **kwargs: Any,
    ):
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
            raise ValueError(f"pool_size must be an integer >= 1. Received: {pool_size!r}.")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(
                "batch_size must be an integer >= 1 (the training examples the proxies "
                f"score each architecture on). Received: batch_size={batch_size!r}."
            )
        if proxy not in RANKINGS:
            raise ValueError(f"proxy must be one of {list(RANKINGS)}. Received: {proxy!r}.")
        proxies.measures.check_proxies(vote_proxies if proxy == "vote" else proxy)
        super().__init__(space, **kwargs)
        self.pool_size = pool_size
        self.proxy = proxy
        self.vote_proxies = tuple(vote_proxies)
        self.batch_size = batch_size
        self.ranking: list[dict[str, Any]] = []  # {"values", "score"}, best first
        self._next = 0
        self._places: dict[str, int] = {}  # network hash -> place in the ranking

    def trial_settings(self) -> dict[str, Any]:
        return {**super().trial_settings(), "proxy": self.proxy, "pool_size": self.pool_size}

    # -- The pool ---------------------------------------------------------------
    def prepare(self, context: SearchContext) -> None:
        """Scores the pool, unless a resumed search has its ranking."""
        saved = os.path.join(context.directory, "prescreen.json")
        if not self.ranking and os.path.exists(saved):  # The oracle's state was lost.
            self.ranking = read_json(saved)["ranking"]
        if self.ranking:
            if context.progress:
                log.info("prescreen: the ranking of %d architectures restored", len(self.ranking))
            return
        batch = first_examples(context.train, self.batch_size)
        rng = self.rng()
        pool, seen = [], set()
        for _ in range(self.pool_size * self.max_collisions):
            if len(pool) == self.pool_size:
                break
            arch = self.space.sample(rng)
            if arch.hash() not in seen:
                seen.add(arch.hash())
                pool.append(arch)
        start, scores, names = time.perf_counter(), [], self._proxy_names()
        for i, arch in enumerate(pool):
            scores.append(score_architecture(
                self.space, arch, batch, names, weights_seed=int(rng.integers(2**31)),
                seed=self.seed or 0,
            ))  # fmt: skip
            if context.progress and (i + 1) % max(1, len(pool) // 5) == 0:
                log.info("prescreen: %d/%d architectures scored (%s) in %.1fs",
                         i + 1, len(pool), self.proxy, time.perf_counter() - start)  # fmt: skip
        ranked = proxies.vote(scores, self.vote_proxies) if self.proxy == "vote" else [
            s[self.proxy] for s in scores
        ]  # fmt: skip
        order = np.argsort(-np.nan_to_num(np.asarray(ranked, float), nan=-np.inf), kind="stable")
        self.ranking = [
            {"values": self.space.encode(pool[i]), "hash": pool[i].hash(),
             "score": float(ranked[i]), "proxies": scores[i]}
            for i in order
        ]  # fmt: skip
        write_json(saved, {"proxy": self.proxy, "ranking": self.ranking}, indent=1)
        self.save()

    def _proxy_names(self) -> tuple[str, ...]:
        return self.vote_proxies if self.proxy == "vote" else (self.proxy,)

    # -- Trials -----------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if not self.ranking:
            return self.stop(
                "the prescreen ranking is empty: the trial runner's prepare hook scores the "
                "pool first (kerasnas.Search or kerasnas.NasTuner)"
            )
        self._next, _, arch = self.next_new(self.ranking, self._next, self._decode)
        if arch is not None:
            return self.propose(arch)
        return self.stop(f"all {len(self.ranking)} pre-screened architectures have been tried")

    def _decode(self, entry: dict[str, Any]) -> Architecture:
        return self.space.decode(entry["values"])

    def trial_details(self, trial: Any) -> dict[str, Any]:
        """With the base's details, `{"prescreen": {"rank", "score"}}`: the trial's place in
        the ranking (1 is the best score) and its score."""
        if len(self._places) != len(self.ranking):
            self._places = {entry["hash"]: i for i, entry in enumerate(self.ranking)}
        place = self._places.get(self.network_hash(trial))
        found = (
            None if place is None else {"rank": place + 1, "score": self.ranking[place]["score"]}
        )
        return {**super().trial_details(trial), "prescreen": found}

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "ranking": self.ranking, "next": self._next}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.ranking = state.get("ranking", [])
        self._next = state.get("next", 0)
