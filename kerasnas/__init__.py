"""kerasnas: Keras-native neural architecture search on keras-tuner."""

from kerasnas import report  # noqa: F401, I001 - first: installs the kerasnas log handler.
from kerasnas import (
    benchmarks,
    data,
    distributed,
    errors,
    morph,
    objectives,
    oneshot,
    oracles,
    proxies,
    spaces,
)
from kerasnas.architecture import Architecture, Cell
from kerasnas.errors import CorruptStoreError, OutOfSpaceError, ProjectInUseError
from kerasnas.oracles.halving import Halving
from kerasnas.recipe import Recipe
from kerasnas.search import Search
from kerasnas.training.runner import NasTuner

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "Cell",
    "CorruptStoreError",
    "Halving",
    "NasTuner",
    "OutOfSpaceError",
    "ProjectInUseError",
    "Recipe",
    "Search",
    "benchmarks",
    "data",
    "distributed",
    "errors",
    "morph",
    "objectives",
    "oneshot",
    "oracles",
    "proxies",
    "spaces",
]
