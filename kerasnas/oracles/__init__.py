"""Search strategies, each a keras-tuner Oracle."""

from kerasnas.oracles.base import NasOracle
from kerasnas.oracles.controller import ControllerOracle
from kerasnas.oracles.evolution import EvolutionOracle
from kerasnas.oracles.morphism import MorphismOracle
from kerasnas.oracles.oneshot import (
    DARTSOracle,
    ENASOracle,
    GDASOracle,
    OneShotOracle,
    SPOSOracle,
)
from kerasnas.oracles.random import RandomSearchOracle

# Strategy names accepted by `kerasnas.Search(strategy=...)`.
STRATEGIES = {
    "random": RandomSearchOracle,
    "evolution": EvolutionOracle,
    "controller": ControllerOracle,
    "morphism": MorphismOracle,
    "oneshot": OneShotOracle,
    "spos": SPOSOracle,
    "enas": ENASOracle,
    "darts": DARTSOracle,
    "gdas": GDASOracle,
}

__all__ = [
    "STRATEGIES",
    "ControllerOracle",
    "DARTSOracle",
    "ENASOracle",
    "EvolutionOracle",
    "GDASOracle",
    "MorphismOracle",
    "NasOracle",
    "OneShotOracle",
    "RandomSearchOracle",
    "SPOSOracle",
]
