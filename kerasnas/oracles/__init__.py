"""Search strategies, each a keras-tuner Oracle."""

from kerasnas.oracles.bananas import BananasOracle
from kerasnas.oracles.base import NasOracle, SearchContext, TrialContext
from kerasnas.oracles.controller import ControllerOracle
from kerasnas.oracles.evolution import EvolutionOracle
from kerasnas.oracles.grid import GridSearchOracle
from kerasnas.oracles.halving import Halving
from kerasnas.oracles.local import LocalSearchOracle
from kerasnas.oracles.morphism import MorphismOracle
from kerasnas.oracles.oneshot import (
    DARTSOracle,
    ENASOracle,
    GDASOracle,
    OneShotOracle,
    SPOSOracle,
)
from kerasnas.oracles.prescreen import PrescreenOracle
from kerasnas.oracles.random import RandomSearchOracle

# Strategy names accepted by `kerasnas.Search(strategy=...)`, also the `--strategy` values of
# `python -m kerasnas`; an oracle's `cli_flags` maps the flags it takes to its arguments.
STRATEGIES = {
    "random": RandomSearchOracle,
    "grid": GridSearchOracle,
    "evolution": EvolutionOracle,
    "controller": ControllerOracle,
    "morphism": MorphismOracle,
    "oneshot": OneShotOracle,
    "spos": SPOSOracle,
    "enas": ENASOracle,
    "darts": DARTSOracle,
    "gdas": GDASOracle,
    "local": LocalSearchOracle,
    "bananas": BananasOracle,
    "prescreen": PrescreenOracle,
}


def register(name: str, strategy: type[NasOracle]) -> None:
    """Makes `kerasnas.Search(strategy=name)` (and `--strategy=name`) run `strategy`.

    Args:
        name: The strategy's name; it must not name a registered strategy.
        strategy: A subclass of `NasOracle` (see docs/architecture.md).
    """
    if not (isinstance(strategy, type) and issubclass(strategy, NasOracle)):
        raise ValueError(
            f"A strategy must be a subclass of kerasnas.oracles.NasOracle. Received: {strategy!r}."
        )
    if name in STRATEGIES:
        raise ValueError(
            f"The strategy name {name!r} is already registered (to "
            f"{STRATEGIES[name].__name__}); choose another name."
        )
    STRATEGIES[name] = strategy


__all__ = [
    "STRATEGIES",
    "register",
    "BananasOracle",
    "ControllerOracle",
    "DARTSOracle",
    "ENASOracle",
    "EvolutionOracle",
    "GDASOracle",
    "GridSearchOracle",
    "Halving",
    "LocalSearchOracle",
    "MorphismOracle",
    "NasOracle",
    "SearchContext",
    "TrialContext",
    "OneShotOracle",
    "PrescreenOracle",
    "RandomSearchOracle",
    "SPOSOracle",
]
