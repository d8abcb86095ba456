"""The flags of `python -m kerasnas`: their types, help texts and validators.

Only the command line's own flags are written here. The space and strategy
flags (`--num_cells`, `--population_size`, ...) are declared by the classes
of the registries, `kerasnas.spaces.SPACES` and `kerasnas.oracles.STRATEGIES`
(`cli_flags`, see `kerasnas.cli.registry`), and defined from them by
`define_registry_flags`, which also writes the texts that list the
registries; the command line calls it again just before it parses, so a
class registered at run time counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import keras_tuner
from absl import flags
from keras_tuner.engine import metrics_tracking

from kerasnas import data
from kerasnas.cli import registry
from kerasnas.oracles import STRATEGIES
from kerasnas.spaces import SPACES

FLAGS = flags.FLAGS
#: `--distribution` names.
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")


# -- Objectives -------------------------------------------------------------
def parse_objective(value: str) -> Any:
    """A `--objective` value as Search takes it: a metric name or a keras_tuner.Objective."""
    name, sep, direction = value.rpartition(":")
    if sep and direction in ("min", "max"):
        if not name:
            raise flags.ValidationError(f"objective {value!r} lacks a metric name.")
        return keras_tuner.Objective(name, direction)
    known = bool(value) and metrics_tracking.infer_metric_direction(value) is not None
    if sep and not known:
        # NAME:DIRECTION with another direction than max or min (e.g. val_accuracy:up).
        example = name or "NAME"
        raise flags.ValidationError(
            f"the direction after ':' must be max or min, not {direction!r}; "
            f"e.g. --objective={example}:max or --objective={example}:min."
        )
    if not known:
        raise flags.ValidationError(
            f"cannot tell whether to maximise or minimise {value!r}; "
            f"write {value or 'NAME'}:max or {value or 'NAME'}:min."
        )
    return value


_DATASET_NAMES = ", ".join(
    [*sorted(data.DATASETS), *(f"{prefix}:..." for prefix in getattr(data, "PREFIXES", {}))]
)

_HALVING_HELP = (
    "Successive halving across architectures: each new one trains --halving_min_epochs, "
    "the best 1 in ETA of each rung go on from their checkpoint, up to --epochs. "
    "Default: off (every trial trains --epochs)."
)


# -- Validators -------------------------------------------------------------
def _check_objective(value: str) -> bool:
    parse_objective(value)
    return True


def _check_export(value: str | None) -> bool:
    if value and not value.endswith(".keras"):
        raise flags.ValidationError("the exported model is a Keras file; end the path in .keras.")
    return True


def _check_name(registry: Mapping[str, type]) -> Callable[[str], bool]:
    """The validator of --space or --strategy: a name of the registry as it is when parsed."""

    def check(value: str) -> bool:
        if value not in registry:
            raise flags.ValidationError(f"value should be one of <{'|'.join(registry)}>")
        return True

    return check


# -- The command line's own flags --------------------------------------------
def _define_own_flags() -> None:
    """Defines the flags that are not a space's or a strategy's, with their validators."""
    # -- Data and run -----------------------------------------------------------
    flags.DEFINE_string(
        "dataset",
        "digits",
        f"Dataset to search on: any name kerasnas.data.load accepts: {_DATASET_NAMES}, e.g. "
        "tfds:cifar10 or npz:path/to/data.npz. Trials train on its training split and are "
        "scored on its validation split.",
    )
    flags.DEFINE_integer("epochs", 5, "Training epochs per trial.", lower_bound=1)
    flags.DEFINE_integer(
        "batch_size",
        32,
        "Batch size (the global batch under --distribution, split among the replicas).",
        lower_bound=1,
    )
    # -- Space and strategy -----------------------------------------------------
    # Their help texts are written from the registries when the flags are parsed
    # (`define_registry_flags`), and a validator checks the names against the
    # registries then, so a class registered at run time is a valid choice.
    flags.DEFINE_string("space", "nasnet", "Search space (kerasnas.spaces.SPACES).")
    flags.DEFINE_string("strategy", "random", "Search strategy (kerasnas.oracles.STRATEGIES).")
    # -- Search -----------------------------------------------------------------
    flags.DEFINE_string(
        "objective",
        "val_accuracy",
        "Metric to optimise, one the models log: val_accuracy or accuracy (maximised), "
        "val_loss or loss (minimised); NAME:max or NAME:min sets the direction explicitly.",
    )
    flags.DEFINE_integer(
        "max_trials", 10, "Most trials of the project, counting resumed ones.", lower_bound=1
    )
    flags.DEFINE_float(
        "time_budget",
        None,
        "Wall-clock seconds the search may take (earlier runs' trials count); a trial starts "
        "when its first epoch fits and is stopped at the deadline. Default: no budget.",
        lower_bound=1e-9,
    )
    flags.DEFINE_integer("halving_eta", None, _HALVING_HELP, lower_bound=2)
    flags.DEFINE_integer(
        "halving_min_epochs", 1, "Epochs of a new architecture under --halving_eta.", lower_bound=1
    )
    flags.DEFINE_integer(
        "max_model_size",
        None,
        "Trials whose model has more parameters fail at once. Default: no limit.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "seed",
        None,
        "Seed of the strategy, the trials' initial weights and the data order. Default: unset "
        "(the strategy and the weights draw a random seed).",
        lower_bound=0,
    )
    flags.DEFINE_string("directory", "kerasnas_runs", "Directory of the projects.")
    flags.DEFINE_string(
        "project_name", "search", "The project: trials are stored in --directory/--project_name."
    )
    flags.DEFINE_boolean(
        "overwrite",
        False,
        "Delete an existing project of that name and start afresh; by default it is resumed.",
    )
    flags.DEFINE_enum(
        "distribution",
        "none",
        list(DISTRIBUTIONS),
        "Train each trial under a tf.distribute strategy: none, mirrored (MirroredStrategy, "
        "all local GPUs) or multi_worker (MultiWorkerMirroredStrategy; needs TF_CONFIG).",
    )
    flags.DEFINE_enum(
        "role",
        "none",
        ["none", "chief", "worker"],
        "Parallel trials (keras-tuner's chief/worker mode): chief serves trials to workers; "
        "worker trains them. Start one chief and any number of workers with the same flags "
        "(and --worker_id). See also kerasnas.distributed.launch.",
    )
    flags.DEFINE_string(
        "chief_address",
        "127.0.0.1:8000",
        "host:port the chief binds to and workers reach. keras-tuner's gRPC channel is "
        "unauthenticated: keep it on 127.0.0.1 or a private network.",
    )
    flags.DEFINE_integer("worker_id", 0, "This worker's number (--role=worker).", lower_bound=0)
    flags.DEFINE_string(
        "export",
        None,
        "Path (.keras) of the exported best model. Default: "
        "--directory/--project_name/best.keras; an empty value exports nothing.",
    )
    flags.DEFINE_boolean(
        "show",
        False,
        "Print the results table of the stored project --directory/--project_name and exit; "
        "trains nothing (space, strategy and objective come from the project).",
    )

    flags.register_validator("objective", _check_objective)
    flags.register_validator("export", _check_export)
    flags.register_validator(
        "project_name",
        lambda v: bool(v) and os.sep not in v,
        "project_name must be a non-empty folder name.",
    )
    flags.register_validator("space", _check_name(SPACES))
    flags.register_validator("strategy", _check_name(STRATEGIES))


# -- Texts written from the registries --------------------------------------
def listing(registry: Mapping[str, type]) -> str:
    """The names of a registry with their classes: "random (RandomSearchOracle), ..."."""
    return ", ".join(f"{name} ({cls.__name__})" for name, cls in registry.items())


def halving_strategies() -> list[str]:
    """The strategies that can run with `--halving_eta` (their `supports_halving`)."""
    return [n for n, cls in STRATEGIES.items() if getattr(cls, "supports_halving", True)]


def define_registry_flags() -> None:
    """Defines the flags that the registered classes declare, and writes the help texts that
    list the registries (`--space`, `--strategy`, `--halving_eta`).

    `parse_flags` calls it (through `define_flags`) before it parses, so a
    space or strategy registered by then, at run time included, is a valid
    choice with its flags.

    Raises:
        TypeError: A class's `cli_flags` is malformed or clashes with another's.
    """
    registry.define(SPACES, "space", __name__)
    registry.define(STRATEGIES, "strategy", __name__)
    FLAGS["space"].help = f"Search space, one of kerasnas.spaces.SPACES: {listing(SPACES)}."
    FLAGS["strategy"].help = (
        f"Search strategy, one of kerasnas.oracles.STRATEGIES: {listing(STRATEGIES)}. See "
        "docs/strategies/."
    )
    halving = "|".join(halving_strategies())
    FLAGS["halving_eta"].help = f"{_HALVING_HELP} Only with --strategy={halving}."


def define_flags() -> None:
    """Defines the command line's flags: its own, then the registries' (`define_registry_flags`).

    It can run again: it defines what is missing (e.g. after absl's
    `flagsaver` removed the flags defined under it) and refreshes the rest.
    `parse_flags` calls it just before it parses.
    """
    if "dataset" not in FLAGS:
        _define_own_flags()
    define_registry_flags()


define_flags()
