"""Combining proxies: the rank vote of Abdelfattah et al. (ICLR 2021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: The proxies Abdelfattah et al. vote with: synflow, jacob_cov and snip.
VOTE_PROXIES = ("synflow", "jacob_cov", "snip")


def vote(
    scores: Sequence[Mapping[str, float]], proxies: str | Sequence[str] = VOTE_PROXIES
) -> list[float]:
    """The combined score of several architectures: their mean rank over the proxies.

    Abdelfattah et al. (ICLR 2021, "Zero-Cost Proxies for Lightweight NAS")
    let several proxies vote. Here each proxy ranks the architectures from 1
    (lowest score) to `len(scores)` (highest), ties sharing the average of
    their ranks, and an architecture's combined score is its mean rank over
    `proxies`: higher = better. Non-finite scores (NaN, -inf, inf) rank
    lowest, tied with each other.

    Args:
        scores: One dict of proxy values per architecture (e.g. from `score`).
        proxies: The names of the proxies that vote. Defaults to the paper's
            `("synflow", "jacob_cov", "snip")`.

    Returns:
        The combined scores, one per architecture, in the given order.

    Raises:
        ValueError: if `proxies` is empty or an architecture's dict lacks one.
    """
    names = (proxies,) if isinstance(proxies, str) else tuple(dict.fromkeys(proxies))
    if not names:
        raise ValueError("No proxy to vote with: pass proxies=(...) with at least one name.")
    scores = list(scores)
    for i, values in enumerate(scores):
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(
                f"Architecture {i}'s scores lack {missing} (it has {sorted(values)}). "
                "Score every architecture with these proxies, or vote with "
                "proxies=(...) that they all have."
            )
    total = np.zeros(len(scores))
    for name in names:
        column = np.array([float(values[name]) for values in scores], dtype=np.float64)
        column[~np.isfinite(column)] = -np.inf
        total += _average_ranks(column)
    return [float(v) for v in total / len(names)]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 (lowest) to n, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    ranks = np.empty(len(values))
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and ordered[end + 1] == ordered[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks
