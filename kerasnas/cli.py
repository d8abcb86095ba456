"""Batch architecture searches from the command line: `python -m kerasnas`.

    python -m kerasnas --dataset=digits --strategy=evolution --max_trials=50 \\
        --epochs=5 --directory=runs --project_name=digits_evolution
    python -m kerasnas --flagfile=examples/flags/digits_random.flags
    python -m kerasnas --show --directory=runs --project_name=digits_evolution

A run loads the dataset (`kerasnas.data.load`), builds the space and the
strategy from the flags, prints one line per trial and a table of the best
trials, exports the best model (`--export`) and prints its path last. Running
the same command again resumes the project; `--overwrite` starts afresh.
`--show` prints the table of a stored project and runs nothing.

Exit status: 0 on success (and after `--help`/`--helpfull`), 1 when the search
itself fails, 2 for a bad flag value (one line on stderr, `kerasnas: error:
...`, written before anything is trained or written), 130 when interrupted.
See docs/cli.md.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import keras_tuner
from absl import app, flags, logging
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import metrics_tracking

from kerasnas import data, distributed, spaces
from kerasnas._io import read_json
from kerasnas.oracles import STRATEGIES
from kerasnas.search import METADATA, Search
from kerasnas.spaces import ops as ops_module

FLAGS = flags.FLAGS
PROGRAM = "kerasnas"

#: `--space` names and their classes.
SPACES: dict[str, type[spaces.SearchSpace]] = {
    "nasnet": spaces.NASNetSpace,
    "convnet": spaces.ConvNetSpace,
    "macro": spaces.MacroSpace,
    "nasbench101": spaces.NASBench101Space,
    "nasbench201": spaces.NASBench201Space,
}
#: `--distribution` names.
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")

# Space flags: for each, the spaces that take it and the constructor argument it sets
# there. A space flag given with a space that does not take it is an error.
_SPACE_FLAGS: dict[str, dict[str, str]] = {
    "num_blocks": {"nasnet": "num_blocks"},
    "num_cells": {
        "nasnet": "num_cells",
        "nasbench101": "cells_per_stack",
        "nasbench201": "cells_per_stage",
    },
    # NAS-Bench-101 downsamples between stacks: num_stacks = num_reductions + 1.
    "num_reductions": {"nasnet": "num_reductions", "nasbench101": "num_stacks"},
    "filters": {
        "nasnet": "filters",
        "nasbench101": "stem_filters",
        "nasbench201": "stem_filters",
        "macro": "init_channels",
    },
    "ops": {"nasnet": "ops"},
    "stages": {"macro": "stages"},
    "learning_rate": {name: "learning_rate" for name in SPACES},
}
# The one-shot strategies (a supernet ranks the candidates that trials train).
_ONE_SHOT = ("oneshot", "spos", "enas", "darts", "gdas")
# Strategy flags: the strategy (or strategies) that take each and the oracle argument it sets.
_STRATEGY_FLAGS: dict[str, tuple[str | tuple[str, ...], str]] = {
    "population_size": ("evolution", "population_size"),
    "sample_size": ("evolution", "sample_size"),
    "controller_algorithm": ("controller", "algorithm"),
    "controller_batch_size": ("controller", "batch_size"),
    "morphism_mode": ("morphism", "mode"),
    "morphism_max_ops": ("morphism", "max_ops"),
    "max_params": ("morphism", "max_params"),
    "max_layers": ("morphism", "max_layers"),
    "supernet_epochs": (_ONE_SHOT, "supernet_epochs"),
    "retrain_epochs": (_ONE_SHOT, "retrain_epochs"),
    "init": (_ONE_SHOT, "init"),
    "num_candidates": (_ONE_SHOT, "num_candidates"),
}

_EVOLUTION, _CONTROLLER = STRATEGIES["evolution"], STRATEGIES["controller"]
_MORPHISM = STRATEGIES["morphism"]


def _default(cls: type, argument: str) -> Any:
    """The default of a constructor argument."""
    return inspect.signature(cls.__init__).parameters[argument].default


def _space_help(flag: str, what: str) -> str:
    """The help of a space flag: what it sets in each space that takes it, and the default."""
    uses = []
    for name, argument in _SPACE_FLAGS[flag].items():
        default = _default(SPACES[name], argument)
        if flag == "num_reductions" and name == "nasbench101":
            argument, default = "num_stacks - 1", default - 1
        if isinstance(default, (list, tuple)):
            default = ",".join(str(d) for d in default)
        uses.append(f"{name} {argument}, default {default}")
    return f"{what}. Sets {'; '.join(uses)}."


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
    "Search strategy: random (uniform, no isomorphic repeats), evolution (regularized "
    "evolution), controller (RL controller, REINFORCE or PPO), morphism (network "
    "morphism: children grow trained networks and inherit their weights); one-shot, "
    "with a weight-sharing supernet of a nasnet or nasbench201 space that ranks the "
    "candidates the trials train: oneshot (uniform path dropout, Bender et al.), spos, "
    "enas, darts, gdas.",
)
flags.DEFINE_integer(
    "population_size",
    None,
    f"evolution: population size P. Default: {_default(_EVOLUTION, 'population_size')}.",
    lower_bound=2,
)
flags.DEFINE_integer(
    "sample_size",
    None,
    "evolution: tournament size S, at most --population_size. "
    f"Default: {_default(_EVOLUTION, 'sample_size')}.",
    lower_bound=1,
)
flags.DEFINE_enum(
    "controller_algorithm",
    None,
    ["reinforce", "ppo"],
    f"controller: policy-gradient algorithm. Default: {_default(_CONTROLLER, 'algorithm')}.",
)
flags.DEFINE_integer(
    "controller_batch_size",
    None,
    "controller: architectures sampled per policy update. "
    f"Default: {_default(_CONTROLLER, 'batch_size')}.",
    lower_bound=1,
)
flags.DEFINE_enum(
    "morphism_mode",
    None,
    ["bayesian", "hill_climb"],
    "morphism: bayesian (Auto-Keras: GP with an edit-distance kernel) or hill_climb "
    f"(NASH). Default: {_default(_MORPHISM, 'mode')}.",
)
flags.DEFINE_integer(
    "morphism_max_ops",
    None,
    f"morphism: most ops between parent and child. Default: {_default(_MORPHISM, 'max_ops')}.",
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
_ONE_SHOT_ORACLE = STRATEGIES["oneshot"]
flags.DEFINE_integer(
    "supernet_epochs",
    None,
    "one-shot strategies: passes of supernet training. "
    f"Default: {_default(_ONE_SHOT_ORACLE, 'supernet_epochs')}.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "num_candidates",
    None,
    "one-shot strategies: architectures the supernet ranks, at least --max_trials. "
    f"Default: {_default(_ONE_SHOT_ORACLE, 'num_candidates')}.",
    lower_bound=1,
)
flags.DEFINE_enum(
    "init",
    None,
    ["scratch", "supernet"],
    "one-shot strategies: trials train from fresh weights or from the supernet's. "
    f"Default: {_default(_ONE_SHOT_ORACLE, 'init')}.",
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


def _check_objective(value: str) -> bool:
    _objective(value)
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


class UsageError(Exception):
    """A bad flag value: reported as one line on stderr, exit status 2."""


def _usage_exit(message: str) -> NoReturn:
    print(f"{PROGRAM}: error: {_one_line(message)}", file=sys.stderr, flush=True)
    sys.exit(2)


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _objective(value: str) -> Any:
    """A `--objective` value as Search takes it: a metric name or a keras_tuner.Objective."""
    name, sep, direction = value.rpartition(":")
    if sep and direction in ("min", "max"):
        if not name:
            raise flags.ValidationError(f"objective {value!r} lacks a metric name.")
        return keras_tuner.Objective(name, direction)
    if not value or metrics_tracking.infer_metric_direction(value) is None:
        raise flags.ValidationError(
            f"cannot tell whether to maximise or minimise {value!r}; "
            f"write {value or 'NAME'}:max or {value or 'NAME'}:min."
        )
    return value


def _given(name: str) -> bool:
    return FLAGS[name].value is not None


def _space_from_flags() -> spaces.SearchSpace:
    """The space that the space flags describe (its shape and classes come from the data)."""
    space = FLAGS.space
    kwargs: dict[str, Any] = {}
    for flag, takers in _SPACE_FLAGS.items():
        if not _given(flag):
            continue
        if space not in takers:
            users = ", ".join(s for s in SPACES if s in takers)
            raise UsageError(f"--{flag} does not apply to --space={space} (only to {users}).")
        value = FLAGS[flag].value
        if flag == "num_reductions" and space == "nasbench101":
            value += 1
        elif flag == "stages":
            value = [int(s) for s in value]
        kwargs[takers[space]] = value
    try:
        return SPACES[space](**kwargs)
    except ValueError as err:
        raise UsageError(f"--space={space}: {err}") from None


def _strategy_kwargs() -> dict[str, Any]:
    """The oracle arguments that the strategy flags set."""
    kwargs = {}
    for flag, (strategy, argument) in _STRATEGY_FLAGS.items():
        if not _given(flag):
            continue
        takers = (strategy,) if isinstance(strategy, str) else strategy
        if FLAGS.strategy not in takers:
            raise UsageError(
                f"--{flag} applies to --strategy={'|'.join(takers)} only, not to "
                f"--strategy={FLAGS.strategy}."
            )
        kwargs[argument] = FLAGS[flag].value
    return kwargs


def _export_path() -> str | None:
    if FLAGS.export is None:
        return os.path.join(FLAGS.directory, FLAGS.project_name, "best.keras")
    return FLAGS.export or None


def _check_distribution() -> None:
    if FLAGS.distribution == "multi_worker" and not os.environ.get("TF_CONFIG"):
        raise UsageError(
            "--distribution=multi_worker needs the TF_CONFIG environment variable describing "
            "the cluster and this worker's task; run the same command on every worker."
        )


def _distribution_strategy(name: str) -> Any:
    """The tf.distribute strategy of a `--distribution` value (None for none)."""
    if name == "none":
        return None
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _is_tuner_worker() -> bool:
    """Whether this process is a worker of keras-tuner's chief/worker mode."""
    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


def _show() -> int:
    """Prints the results table of the stored project."""
    project = os.path.join(FLAGS.directory, FLAGS.project_name)
    metadata_path = os.path.join(project, METADATA)
    if not os.path.isfile(metadata_path):
        raise UsageError(
            f"no kerasnas project in {project} (it has no {METADATA}); "
            "check --directory and --project_name."
        )
    try:
        stored = read_json(metadata_path)
        config = dict(stored["space"])
        class_name = config.pop("class")
        strategy = stored["strategy"]
        objective_name = stored["objective"]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{metadata_path} cannot be read: {err}") from None
    space_class = next((c for c in SPACES.values() if c.__name__ == class_name), None)
    if space_class is None:
        raise UsageError(
            f"{project} was searched with a space the command line lacks: {class_name}."
        )
    strategy = {c.__name__: n for n, c in STRATEGIES.items()}.get(strategy, strategy)
    if strategy not in STRATEGIES:
        raise UsageError(f"{project} was searched with an unknown strategy {strategy!r}.")
    objective: Any = objective_name
    if metrics_tracking.infer_metric_direction(objective_name) is None:
        given = _objective(FLAGS.objective)
        if getattr(given, "name", given) != objective_name:
            raise UsageError(
                f"{project} optimised {objective_name!r}; pass --objective={objective_name}:max "
                f"or --objective={objective_name}:min to show it."
            )
        objective = given
    try:
        space = space_class(**config)
        search = Search(
            space,
            strategy,
            objective=objective,
            directory=FLAGS.directory,
            project_name=FLAGS.project_name,
            verbose=1,
        )
        records = search.results()
    except ValueError as err:
        raise UsageError(str(err)) from None
    shown = {k: v for k, v in config.items() if k not in ("input_shape", "num_classes")}
    knobs = ", ".join(f"{key}={value}" for key, value in shown.items())
    print(
        f"[kerasnas] project {project}: {class_name}({knobs}) on inputs of shape "
        f"{tuple(space.input_shape)} with {space.num_classes} classes; strategy {strategy}, "
        f"objective {search.objective.name} ({search.objective.direction}), {len(records)} trials",
        flush=True,
    )
    search.summary(k=max(1, len(records)))
    return 0


def _set_role() -> None:
    """Sets keras-tuner's chief/worker environment variables from --role."""
    if FLAGS.role == "none":
        return
    host, _, port = FLAGS.chief_address.rpartition(":")
    if not host or not port.isdigit():
        _usage_exit(
            f"--chief_address must be host:port, e.g. 127.0.0.1:8000; got {FLAGS.chief_address!r}"
        )
    os.environ.update(distributed.role_env(FLAGS.role, host, int(port), FLAGS.worker_id))


def _search() -> int:
    """Runs (or resumes) the search the flags describe and exports the best model."""
    _set_role()
    space = _space_from_flags()
    strategy_kwargs = _strategy_kwargs()
    objective = _objective(FLAGS.objective)
    export = _export_path()
    _check_distribution()

    # A multi-worker strategy must exist before TensorFlow runs anything (a tfds
    # dataset, the controller's policy), so it comes first.
    distribution = _distribution_strategy(FLAGS.distribution)
    try:
        search = Search(
            space,
            FLAGS.strategy,
            objective=objective,
            max_trials=FLAGS.max_trials,
            time_budget=FLAGS.time_budget,
            directory=FLAGS.directory,
            project_name=FLAGS.project_name,
            overwrite=FLAGS.overwrite,
            distribution_strategy=distribution,
            seed=FLAGS.seed,
            max_model_size=FLAGS.max_model_size,
            verbose=1,
            **strategy_kwargs,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    try:
        (x, y), (x_val, y_val), _ = data.load(FLAGS.dataset)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(f"--dataset={FLAGS.dataset}: {err}") from None
    print(
        f"[kerasnas] dataset {FLAGS.dataset}: {len(x)} training and {len(x_val)} validation "
        f"examples of shape {tuple(x.shape[1:])}",
        flush=True,
    )
    if distribution is not None:
        print(
            f"[kerasnas] distribution: {type(distribution).__name__} with "
            f"{distribution.num_replicas_in_sync} replica(s)",
            flush=True,
        )
    try:
        # Search.fit checks the data, the objective and a resumed project's space
        # (ValueError) before it trains or writes anything.
        search.fit(
            x,
            y,
            validation_data=(x_val, y_val),
            epochs=FLAGS.epochs,
            batch_size=FLAGS.batch_size,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None

    if export is None or _is_tuner_worker():
        return 0
    try:
        best = search.best_trials(1)[0]
    except ValueError as err:  # Every trial failed: nothing to export.
        print(f"{PROGRAM}: error: {_one_line(str(err))}", file=sys.stderr, flush=True)
        return 1
    path = search.export(export)
    if path is None:  # A multi-worker replica that is not the cluster's chief.
        return 0
    print(
        f"[kerasnas] best model (trial {best.trial_id}, {search.objective.name}="
        f"{best.score:.4f}) exported to {path}",
        flush=True,
    )
    return 0


def main(argv: Sequence[str]) -> int:
    """Runs the command once the flags are parsed; returns the exit status.

    Args:
        argv: The command line left after flag parsing (the program name only).

    Returns:
        0 on success; 1 when every trial failed, so that there is no model to
        export; 2 for a bad flag value. Errors are one `kerasnas: error:` line
        on stderr.
    """
    if not FLAGS["verbosity"].present:
        # absl's app.run turns INFO logging on; keep library chatter (tensorflow-datasets,
        # keras-tuner) off stderr unless --verbosity asks for it.
        logging.set_verbosity(logging.WARNING)
    try:
        if len(argv) > 1:
            raise UsageError(
                f"unexpected arguments {list(argv[1:])}; every option is a --flag=value."
            )
        return _show() if FLAGS.show else _search()
    except UsageError as err:
        print(f"{PROGRAM}: error: {_one_line(str(err))}", file=sys.stderr, flush=True)
        return 2


def parse_flags(argv: Sequence[str]) -> list[str]:
    """Parses the command line into `FLAGS` (`--flagfile` included).

    A bad value exits with status 2 and one line on stderr, instead of absl's
    usage dump and status 1; the help flags exit with status 0.

    Args:
        argv: The command line, the program name first.

    Returns:
        The arguments that are not flags, the program name first.
    """
    try:
        return FLAGS(list(argv))
    except flags.Error as err:
        _usage_exit(str(err).removeprefix("ERROR:: "))
    except SystemExit as exit_:
        # absl's --help, --helpshort, --helpfull and --helpxml exit with 1 once they
        # have printed the help; nothing else exits while flags are parsed.
        if exit_.code == 1:
            sys.exit(0)
        raise


def run(argv: Sequence[str] | None = None) -> None:
    """The `kerasnas` console script and `python -m kerasnas`: parses the flags, runs `main`."""
    argv = list(sys.argv if argv is None else argv)
    main_module = sys.modules.get("__main__")
    if main_module is not None and not getattr(main_module, "__doc__", None):
        # absl's --help prints the main module's docstring (a console script has none).
        main_module.__doc__ = __doc__
    # --help lists the key flags of the main module: make this module's flags its key flags.
    for flag in FLAGS.get_flags_for_module(__name__):
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    try:
        app.run(main, argv=argv, flags_parser=parse_flags)
    except KeyboardInterrupt:
        sys.exit(130)
