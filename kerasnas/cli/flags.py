"""The flags of `python -m kerasnas`: their types, help texts and validators.

Which space or strategy takes a space or strategy flag, and which constructor
argument it sets there, is not written here: the classes of the registries
declare it (`cli_flags`, see `kerasnas.cli.registry`), and the help texts
show the defaults of the constructor arguments that the flags set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras_tuner
from absl import flags
from keras_tuner.engine import metrics_tracking

from kerasnas import data
from kerasnas.cli.registry import constructor_default, declarations, takers
from kerasnas.oracles import STRATEGIES
from kerasnas.proxies import PROXIES
from kerasnas.spaces import SPACES
from kerasnas.spaces import ops as ops_module

FLAGS = flags.FLAGS
#: `--distribution` names.
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")

#: The value that a flag passes on, where it differs from the parsed value.
CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "stages": lambda value: [int(s) for s in value],
}


# -- Help texts -------------------------------------------------------------
def _space_help(flag: str, what: str) -> str:
    """The help of a space flag: what it sets in each space that takes it, and the default."""
    uses = []
    for name, (argument, offset) in takers(SPACES, flag).items():
        default = constructor_default(SPACES[name], argument)
        if offset:  # The flag is the argument minus the offset.
            sign = "-" if offset > 0 else "+"
            argument, default = f"{argument} {sign} {abs(offset)}", default - offset
        if isinstance(default, (list, tuple)):
            default = ",".join(str(d) for d in default)
        uses.append(f"{name} {argument}, default {default}")
    return f"{what}. Sets {'; '.join(uses)}."


def _strategy_help(flag: str, text: str) -> str:
    """A strategy flag's help: `text` with `{default}` the first taker's constructor default."""
    name, (argument, offset) = next(iter(takers(STRATEGIES, flag).items()))
    default = constructor_default(STRATEGIES[name], argument)
    return text.format(default=default - offset if offset else default)


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
# -- Space ------------------------------------------------------------------
flags.DEFINE_enum(
    "space",
    "nasnet",
    list(SPACES),
    "Search space: nasnet (NASNet cells), convnet (plain/residual convolution stages, cheap "
    "on a CPU), macro (NAS-Bench-Macro), nasbench101, nasbench201.",
)
flags.DEFINE_integer(
    "num_blocks", None, _space_help("num_blocks", "Blocks per cell"), lower_bound=1
)
flags.DEFINE_integer("num_cells", None, _space_help("num_cells", "Cells per stage"), lower_bound=1)
flags.DEFINE_integer(
    "num_reductions",
    None,
    _space_help("num_reductions", "Resolution reductions (stages - 1)"),
    lower_bound=0,
)
flags.DEFINE_integer(
    "filters", None, _space_help("filters", "Width of the first stage"), lower_bound=1
)
flags.DEFINE_integer(
    "stem_strides",
    None,
    _space_help("stem_strides", "Stem strides: 1, or 2 to halve the resolution before the cells"),
    lower_bound=1,
    upper_bound=2,
)
flags.DEFINE_list(
    "ops",
    None,
    _space_help(
        "ops", f"Comma-separated cell ops to choose from, among {', '.join(ops_module.OPS)}"
    ),
)
flags.DEFINE_list(
    "stages", None, _space_help("stages", "Comma-separated searchable layers per stage")
)
flags.DEFINE_float(
    "learning_rate", None, _space_help("learning_rate", "Adam learning rate of the models, > 0")
)
# -- Strategy ---------------------------------------------------------------
flags.DEFINE_enum(
    "strategy",
    "random",
    sorted(STRATEGIES),
    "Search strategy: random (uniform, no isomorphic repeats), grid (every architecture "
    "of a small space, in order), evolution (regularized evolution), local (local search "
    "over one-decision neighbours), bananas (predictor-guided, BANANAS), controller (RL "
    "controller, REINFORCE or PPO), prescreen (zero-cost proxies rank a pool of untrained "
    "architectures; the best train), morphism (network "
    "morphism: children grow trained networks and inherit their weights); one-shot, "
    "with a weight-sharing supernet of a nasnet or nasbench201 space that ranks the "
    "candidates the trials train: oneshot (uniform path dropout, Bender et al.), spos, "
    "enas, darts, gdas.",
)
flags.DEFINE_integer(
    "population_size",
    None,
    _strategy_help("population_size", "evolution: population size P. Default: {default}."),
    lower_bound=2,
)
flags.DEFINE_integer(
    "sample_size",
    None,
    _strategy_help(
        "sample_size",
        "evolution: tournament size S, at most --population_size. Default: {default}.",
    ),
    lower_bound=1,
)
flags.DEFINE_enum(
    "controller_algorithm",
    None,
    ["reinforce", "ppo"],
    _strategy_help(
        "controller_algorithm", "controller: policy-gradient algorithm. Default: {default}."
    ),
)
flags.DEFINE_integer(
    "controller_batch_size",
    None,
    _strategy_help(
        "controller_batch_size",
        "controller: architectures sampled per policy update. Default: {default}.",
    ),
    lower_bound=1,
)
flags.DEFINE_integer(
    "prescreen_pool",
    None,
    _strategy_help(
        "prescreen_pool", "prescreen: architectures scored untrained. Default: {default}."
    ),
    lower_bound=1,
)
flags.DEFINE_enum(
    "prescreen_proxy",
    None,
    ["vote", *PROXIES],
    _strategy_help(
        "prescreen_proxy",
        "prescreen: the zero-cost proxy that ranks the pool (vote: the mean rank of several). "
        "Default: {default}.",
    ),
)
flags.DEFINE_list(
    "bananas_proxies",
    None,
    _strategy_help(
        "bananas_proxies",
        "bananas: comma-separated zero-cost proxies given to the predictor beside the "
        f"encoding, among {', '.join(PROXIES)} (e.g. naswot,flops). Default: none.",
    ),
)
flags.DEFINE_enum(
    "morphism_mode",
    None,
    ["bayesian", "hill_climb"],
    _strategy_help(
        "morphism_mode",
        "morphism: bayesian (Auto-Keras: GP with an edit-distance kernel) or hill_climb "
        "(NASH). Default: {default}.",
    ),
)
flags.DEFINE_integer(
    "morphism_max_ops",
    None,
    _strategy_help(
        "morphism_max_ops", "morphism: most ops between parent and child. Default: {default}."
    ),
    lower_bound=1,
)
flags.DEFINE_integer(
    "max_params",
    None,
    "morphism: no network with more parameters. Default: no limit.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "max_layers",
    None,
    "morphism: no network with more convolution and dense layers. Default: no limit.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "supernet_epochs",
    None,
    "one-shot strategies: passes of supernet training. Default: enough for 300,000 "
    "examples, at least 10.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "num_candidates",
    None,
    _strategy_help(
        "num_candidates",
        "one-shot strategies: architectures the supernet ranks, at least --max_trials. "
        "Default: {default}.",
    ),
    lower_bound=1,
)
flags.DEFINE_enum(
    "init",
    None,
    ["scratch", "supernet"],
    _strategy_help(
        "init",
        "one-shot strategies: trials train from fresh weights or from the supernet's. "
        "Default: {default}.",
    ),
)
flags.DEFINE_enum(
    "oneshot_rank_by",
    None,
    ["loss", "accuracy"],
    _strategy_help(
        "oneshot_rank_by",
        "uniform, spos, enas: rank candidates by one-shot validation loss or accuracy. "
        "Default: {default}.",
    ),
)
flags.DEFINE_integer(
    "retrain_epochs",
    None,
    "one-shot strategies: training epochs of each trial. Default: --epochs.",
    lower_bound=1,
)
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
    "Wall-clock seconds the search may take (earlier runs' trials count); no trial starts "
    "that would not fit. Default: no budget.",
    lower_bound=1e-9,
)
flags.DEFINE_integer(
    "halving_eta",
    None,
    "Successive halving across architectures: each new one trains --halving_min_epochs, "
    "the best 1 in ETA of each rung go on from their checkpoint, up to --epochs. "
    "Default: off (every trial trains --epochs).",
    lower_bound=2,
)
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


# -- Validators -------------------------------------------------------------
def _check_objective(value: str) -> bool:
    parse_objective(value)
    return True


def _check_ops(value: list[str] | None) -> bool:
    if value is not None:
        try:
            ops_module.check_ops(value)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
    return True


def _check_stages(value: list[str] | None) -> bool:
    if value is not None and not (value and all(s.isdigit() and int(s) >= 1 for s in value)):
        raise flags.ValidationError("stages must be positive layer counts, e.g. 2,3,3.")
    return True


def _check_export(value: str | None) -> bool:
    if value and not value.endswith(".keras"):
        raise flags.ValidationError("the exported model is a Keras file; end the path in .keras.")
    return True


flags.register_validator("objective", _check_objective)
flags.register_validator("ops", _check_ops)
flags.register_validator("stages", _check_stages)
flags.register_validator("export", _check_export)
flags.register_validator(
    "learning_rate", lambda v: v is None or v > 0, "learning_rate must be positive."
)
flags.register_validator(
    "project_name",
    lambda v: bool(v) and os.sep not in v,
    "project_name must be a non-empty folder name.",
)


def _check_declarations() -> None:
    """Every flag that a registered class declares is defined above, as a space or strategy flag."""
    both = sorted(set(declarations(SPACES)) & set(declarations(STRATEGIES)))
    if both:
        raise TypeError(f"--{both[0]} is declared both by a space and by a strategy.")


_check_declarations()
