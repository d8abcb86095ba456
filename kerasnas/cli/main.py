"""Runs `python -m kerasnas`: parses the flags, then searches (or `--show`s a project).

The space and strategy flags are defined and applied from the registries'
declarations (`cli_flags` of the classes in `kerasnas.spaces.SPACES` and
`kerasnas.oracles.STRATEGIES`), read when the command parses its flags and
runs, so a class registered there before then gets its flags here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import keras_tuner
from absl import app, flags
from absl import logging as absl_logging
from keras_tuner.engine import base_tuner, metrics_tracking

from kerasnas import data, distributed
from kerasnas._io import read_json
from kerasnas.cli import flags as flag_definitions
from kerasnas.cli import registry as registry_module
from kerasnas.errors import CorruptStoreError
from kerasnas.oracles import STRATEGIES, Halving
from kerasnas.oracles.base import NasOracle
from kerasnas.search import METADATA, Search
from kerasnas.spaces import SPACES, SearchSpace

FLAGS = flags.FLAGS
PROGRAM = "kerasnas"
#: How keras-tuner's RuntimeError begins when `max_consecutive_failed_trials` trials failed.
CONSECUTIVE_FAILURES = "Number of consecutive failures exceeded the limit"
parse_objective = flag_definitions.parse_objective


class UsageError(Exception):
    """A bad flag value: reported as one line on stderr, exit status 2."""


#: The Python API's words in kerasnas's messages, and the command line's flags for them.
_CLI_WORDS = (
    ("pass overwrite=True", "pass --overwrite"),
    ("another project_name", "another --project_name"),
    ("another directory", "another --directory"),
)


def _usage_exit(message: str) -> NoReturn:
    _error(message)
    sys.exit(2)


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _error(message: str) -> None:
    """Prints the one `kerasnas: error:` line, naming the command line's flags."""
    line = _one_line(message)
    for python, command_line in _CLI_WORDS:
        line = line.replace(python, command_line)
    print(f"{PROGRAM}: error: {line}", file=sys.stderr, flush=True)


def _given_flags(
    registry: Mapping[str, type],
) -> Iterator[tuple[str, registry_module.Flag, dict[str, registry_module.Flag]]]:
    """The flags given that the registry's classes declare: name, definition and takers."""
    for flag, users in registry_module.declarations(registry).items():
        if flag in FLAGS and FLAGS[flag].value is not None:
            yield flag, registry_module.definition(registry, flag, users), users


def _argument(
    flag: str, spec: registry_module.Flag, declaration: registry_module.Flag
) -> tuple[str, Any]:
    """The constructor argument that a given flag sets, and its value."""
    return registry_module.argument_value(declaration, spec, FLAGS[flag].value)


def space_from_flags() -> SearchSpace:
    """The space that the space flags describe (its shape and classes come from the data)."""
    space = FLAGS.space
    kwargs: dict[str, Any] = {}
    for flag, spec, users in _given_flags(SPACES):
        if space not in users:
            raise UsageError(
                f"--{flag} does not apply to --space={space} (only to {', '.join(users)})."
            )
        argument, value = _argument(flag, spec, users[space])
        kwargs[argument] = value
    try:
        return SPACES[space](**kwargs)
    except ValueError as err:
        raise UsageError(f"--space={space}: {err}") from None


def strategy_kwargs() -> dict[str, Any]:
    """The oracle arguments that the strategy flags set."""
    strategy = FLAGS.strategy
    kwargs = {}
    for flag, spec, users in _given_flags(STRATEGIES):
        if strategy not in users:
            raise UsageError(
                f"--{flag} applies to --strategy={'|'.join(users)} only, not to "
                f"--strategy={strategy}."
            )
        argument, value = _argument(flag, spec, users[strategy])
        kwargs[argument] = value
    if FLAGS.halving_eta is None and FLAGS["halving_min_epochs"].present:
        raise UsageError(
            "--halving_min_epochs applies only with --halving_eta (successive halving), "
            "which is not given; add --halving_eta=3 (or another ETA >= 2), or drop "
            "--halving_min_epochs."
        )
    if FLAGS.halving_eta is not None:
        able = flag_definitions.halving_strategies()
        if strategy not in able:
            raise UsageError(
                f"--halving_eta does not apply to --strategy={strategy}: its trials are not "
                "architectures trained from scratch that a checkpoint can continue. Use "
                f"--strategy={'|'.join(able)}."
            )
        try:
            kwargs["halving"] = Halving(FLAGS.epochs, FLAGS.halving_min_epochs, FLAGS.halving_eta)
        except ValueError as err:
            raise UsageError(f"--halving_eta/--halving_min_epochs/--epochs: {err}") from None
    return kwargs


def _export_path() -> str | None:
    if FLAGS.export is None:
        return os.path.join(FLAGS.directory, FLAGS.project_name, "best.keras")
    return FLAGS.export or None


def _nearest_existing(path: str) -> str:
    """`path`, or the closest of its ancestors that exists."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _check_writable_folder(folder: str, flag: str) -> None:
    """Raises UsageError unless `folder` is, or can be made, a folder this process writes in.

    The check creates and removes a file in `folder` or, when it does not exist
    yet, in its closest existing ancestor (where it would be created): it
    leaves nothing behind.
    """
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag}: {existing} is a file, not a folder.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".kerasnas-write-check-", dir=existing)
    except OSError as err:
        raise UsageError(f"{flag}: cannot write in {existing} ({err.strerror or err}).") from None
    os.close(handle)
    os.remove(probe)


def _check_paths(export: str | None) -> None:
    """Checks, before anything is trained, that the project and the export can be written."""
    project = os.path.join(FLAGS.directory, FLAGS.project_name)
    if os.path.exists(FLAGS.directory) and not os.path.isdir(FLAGS.directory):
        raise UsageError(
            f"--directory={FLAGS.directory} is a file; name a folder to store the projects in."
        )
    if os.path.exists(project) and not os.path.isdir(project):
        raise UsageError(
            f"--project_name={FLAGS.project_name}: {project} is a file, not a project folder; "
            "choose another --project_name or --directory."
        )
    _check_writable_folder(project, f"--directory={FLAGS.directory}")
    if export is None or distributed.is_worker():  # keras-tuner workers export nothing.
        return
    flag = f"--export={export}" if FLAGS.export else f"the default export path {export}"
    if os.path.isdir(export):
        raise UsageError(f"{flag} is a folder; name the .keras file to write.")
    if os.path.exists(export) and not os.access(export, os.W_OK):
        raise UsageError(f"{flag}: the file exists and cannot be overwritten.")
    _check_writable_folder(os.path.dirname(os.path.abspath(export)), flag)


def _last_message(trial: Any) -> str:
    """The last line of a failed trial's message (its traceback's exception line)."""
    lines = [line.strip() for line in (trial.message or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"trial {trial.trial_id} {str(trial.status).lower()}"


def _ended_trials(search: Search) -> list[Any]:
    """The project's trials in the order they ended (trial order where that is unknown)."""
    trials = search.oracle.trials
    order = [i for i in getattr(search.oracle, "end_order", []) if i in trials]
    return [trials[i] for i in order] or [trials[i] for i in sorted(trials)]


def _failed_in_a_row(search: Search, err: RuntimeError) -> int:
    """Reports keras-tuner's stop after too many consecutive failed trials; returns 1.

    The search has printed the last trial's progress line and the summary
    table; this adds one `kerasnas: error:` line naming the last trial's error.
    """
    ended = _ended_trials(search)
    last = ended[-1] if ended else None
    count = getattr(search.oracle, "max_consecutive_failed_trials", None)
    reason = _last_message(last) if last is not None else _one_line(str(err)).strip()
    _error(f"{count or 'too many'} trials in a row failed; the last: {reason}")
    return 1


@contextlib.contextmanager
def _no_trial_tracebacks() -> Iterator[None]:
    """Keeps keras-tuner from printing the traceback of each failed trial on stderr.

    keras-tuner 1.4.8 prints it while its `config.DEBUG` is on (the default),
    which it offers no public switch for: it is reached through the module of
    its public `BaseTuner`. Each failed trial's line names its error and the
    command ends with one `kerasnas: error:` line; the traceback stays in the
    trial's message (`trial_N/trial.json`, `Search.results()`). With
    `--verbosity` given, keras-tuner prints them as before.
    """
    config = getattr(sys.modules.get(base_tuner.BaseTuner.__module__), "config_module", None)
    if config is None or not hasattr(config, "DEBUG") or FLAGS["verbosity"].present:
        yield
        return
    debug, config.DEBUG = config.DEBUG, False
    try:
        yield
    finally:
        config.DEBUG = debug


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


def _stored_objective(project: str, name: str, direction: Any) -> Any:
    """The objective a project stored, as `Search` takes it; no flag needed.

    Projects stored without the objective's direction (by an earlier kerasnas)
    whose direction keras-tuner cannot infer from the name take it from
    `--objective=NAME:max|min`.
    """
    inferred = metrics_tracking.infer_metric_direction(name)
    if direction in ("max", "min"):
        return name if inferred == direction else keras_tuner.Objective(name, direction)
    if inferred is not None:
        return name
    given = parse_objective(FLAGS.objective)
    if getattr(given, "name", given) != name:
        raise UsageError(
            f"{project} optimised {name!r}; pass --objective={name}:max "
            f"or --objective={name}:min to show it."
        )
    return given


def _stored_search(space: SearchSpace, strategy: str, objective: Any, settings: Any) -> Search:
    """A `Search` on the stored project, its strategy built with the stored settings.

    The settings a project records (`NasOracle.trial_settings`: e.g.
    `{"halving": {...}}`, a pre-screen's `pool_size` and `proxy`, a one-shot
    search's `method`, `init` and `retrain_epochs`) are constructor arguments
    of the registered strategies, so the strategy is built with them and the
    project is read as it was searched. A strategy that does not take its
    settings back is built with its defaults and shown with the stored settings
    (`--show` trains and writes nothing).
    """
    settings = settings if isinstance(settings, dict) else {}
    common: dict[str, Any] = {
        "objective": objective,
        "directory": FLAGS.directory,
        "project_name": FLAGS.project_name,
        "verbose": 1,
    }
    try:
        kwargs = {k: Halving(**v) if k == "halving" else v for k, v in settings.items()}
        search = Search(space, strategy, **common, **kwargs)
    except (TypeError, ValueError):
        search = Search(space, strategy, **common)
    oracle = search.oracle
    if isinstance(oracle, NasOracle) and _as_json(oracle.trial_settings()) != _as_json(settings):
        oracle.trial_settings = lambda: settings  # Read only: nothing is trained or written.
    return search


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


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
    except CorruptStoreError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptStoreError(
            f"The project file {metadata_path} does not describe a kerasnas search ({err!r}). "
            "Restore it from a backup, or pass overwrite=True to start the project afresh."
        ) from None
    space_class = next((c for c in SPACES.values() if c.__name__ == class_name), None)
    if space_class is None:
        raise UsageError(
            f"{project} was searched with a space the command line lacks: {class_name}."
        )
    strategy = {c.__name__: n for n, c in STRATEGIES.items()}.get(strategy, strategy)
    if strategy not in STRATEGIES:
        raise UsageError(f"{project} was searched with an unknown strategy {strategy!r}.")
    objective = _stored_objective(project, objective_name, stored.get("direction"))
    try:
        space = space_class(**config)
        search = _stored_search(space, strategy, objective, stored.get("strategy_settings"))
        records = search.results()
    except CorruptStoreError:
        raise
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
    space = space_from_flags()
    oracle_kwargs = strategy_kwargs()
    objective = parse_objective(FLAGS.objective)
    export = _export_path()
    _check_distribution()
    _check_paths(export)

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
            **oracle_kwargs,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    try:
        (x, y), (x_val, y_val), _ = data.load(FLAGS.dataset)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(f"--dataset={FLAGS.dataset}: {err}") from None
    prefix, _, path = FLAGS.dataset.partition(":")
    if prefix.strip() == "text" and space.num_classes is None:
        # The vocabulary is the whole text's: the validation piece may hold characters that
        # the training piece lacks, which fit() refuses unless the space's classes hold them.
        space.configure(num_classes=len(data.vocabulary(data.read_text(path.strip()))))
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
        with _no_trial_tracebacks():
            search.fit(
                x,
                y,
                validation_data=(x_val, y_val),
                epochs=FLAGS.epochs,
                batch_size=FLAGS.batch_size,
            )
    except CorruptStoreError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    except RuntimeError as err:
        # keras-tuner's oracle stops the search after max_consecutive_failed_trials.
        if not str(err).startswith(CONSECUTIVE_FAILURES):
            raise
        return _failed_in_a_row(search, err)

    if distributed.is_worker():  # keras-tuner workers hold no trials and export nothing.
        return 0
    if not search.completed_trials():
        ended = _ended_trials(search)
        why = f": all {len(ended)} failed; the last: {_last_message(ended[-1])}"
        _error(f"no trial completed in {search.project_dir}{why if ended else '; none ran.'}")
        return 1
    if export is None:
        return 0
    best = search.best_trials(1)[0]
    try:
        path = search.export(export)
    except CorruptStoreError as err:  # The best trial's weights are missing or damaged.
        raise CorruptStoreError(
            f"{err} (From the command line, --export= exports nothing; the trials are kept.)"
        ) from None
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
        0 on success; 1 when the search failed (every trial failed, or too
        many in a row did) or a file of the project cannot be read back (a
        `CorruptStoreError`, e.g. the best trial's checkpoint missing or
        damaged at the export); 2 for a bad flag value (or an unwritable project
        folder or export path), found before anything is trained. Errors end
        the output with one `kerasnas: error:` line on stderr.
    """
    if not FLAGS["verbosity"].present:
        # absl's app.run turns INFO logging on; keep library chatter (tensorflow-datasets,
        # keras-tuner) off stderr unless --verbosity asks for it.
        absl_logging.set_verbosity(absl_logging.WARNING)
    try:
        if len(argv) > 1:
            raise UsageError(
                f"unexpected arguments {list(argv[1:])}; every option is a --flag=value."
            )
        return _show() if FLAGS.show else _search()
    except UsageError as err:
        _error(str(err))
        return 2
    except CorruptStoreError as err:  # A project file that cannot be read back: named.
        _error(str(err))
        return 1


def parse_flags(argv: Sequence[str]) -> list[str]:
    """Parses the command line into `FLAGS` (`--flagfile` included).

    First it defines the flags of the spaces and strategies registered by now
    (`kerasnas.cli.flags.define_flags`), so a class registered at run time is
    a `--space` or `--strategy` choice with its own flags.

    A bad value exits with status 2 and one line on stderr, instead of absl's
    usage dump and status 1; the help flags exit with status 0.

    Args:
        argv: The command line, the program name first.

    Returns:
        The arguments that are not flags, the program name first.
    """
    flag_definitions.define_flags()
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
        main_module.__doc__ = sys.modules[__package__].__doc__
    # --help lists the key flags of the main module: make the kerasnas flags its key flags
    # (the registries' flags included, as they are now).
    flag_definitions.define_flags()
    for flag in FLAGS.get_flags_for_module(flag_definitions.__name__):
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    try:
        app.run(main, argv=argv, flags_parser=parse_flags)
    except KeyboardInterrupt:
        sys.exit(130)
