"""Search strategies, each a keras-tuner Oracle."""

from kerasnas.oracles.base import NasOracle
from kerasnas.oracles.evolution import EvolutionOracle
from kerasnas.oracles.random import RandomSearchOracle

# Strategy names accepted by `kerasnas.Search(strategy=...)`.
STRATEGIES = {"random": RandomSearchOracle, "evolution": EvolutionOracle}

__all__ = ["STRATEGIES", "EvolutionOracle", "NasOracle", "RandomSearchOracle"]
