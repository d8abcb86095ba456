"""Search strategies, each a keras-tuner Oracle."""

from kerasnas.oracles.base import NasOracle
from kerasnas.oracles.random import RandomSearchOracle

# Strategy names accepted by `kerasnas.Search(strategy=...)`.
STRATEGIES = {"random": RandomSearchOracle}

__all__ = ["NasOracle", "RandomSearchOracle", "STRATEGIES"]
