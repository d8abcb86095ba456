"""Compare strategies on the shared tabular benchmarks: `python -m kerasnas.benchmarks`.

Runs every strategy that works on a table (default: all registered in
`kerasnas.oracles.STRATEGIES` except those that train networks themselves:
morphism and the one-shot methods) and Optuna's TPE sampler as a peer, on
every shared table found (NAS-Bench-Macro, Channel-Bench-Macro ResNet and
MobileNet), at several budgets and seeds:

    python -m kerasnas.benchmarks --budgets=50,100,300 --seeds=30 --plot=cmp

For each table it prints a header line, then per budget and strategy

    <strategy> mean=<x> std=<y> se=<z> table=<table> seeds=<n> budget=<b>

of the reported metric (`test_accuracy`) of each search's best architecture by
the objective (`val_accuracy`): its mean, standard deviation and standard
error over the seeds. `--table=PATH --budget=B` compare on one table file at
one budget, as earlier versions did.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "tables",
    None,
    "Shared tables to compare on: macro, channel_resnet, channel_mobilenet, transnas_<task> "
    "(class_scene, jigsaw, room_layout, segmentsemantic, autoencoder). "
    "Default: all found in ../shared/data (or $KERASNAS_SHARED_DATA).",
)
flags.DEFINE_string("table", None, "Path of one table file instead of --tables.")
flags.DEFINE_enum(
    "space",
    None,
    [
        "macro",
        "channel_resnet",
        "channel_mobilenet",
        "transnas_class_scene",
        "transnas_jigsaw",
        "transnas_room_layout",
        "transnas_segmentsemantic",
        "transnas_autoencoder",
    ],
    "Which benchmark --table holds; default: from its file name (TransNAS-Bench-101: "
    "class_scene), else macro.",
)
flags.DEFINE_list(
    "strategies",
    None,
    "Strategies to compare (add tpe to require the Optuna TPE peer, gp for Optuna's "
    "GPSampler, which needs PyTorch). "
    "Default: every registered strategy that runs on a table.",
)
flags.DEFINE_boolean("tpe", True, "Run Optuna's TPE sampler as a peer (needs optuna).")
flags.DEFINE_list("budgets", ["50", "100", "300"], "Trials (table queries) per search.")
flags.DEFINE_integer("budget", None, "One budget (replaces --budgets).", lower_bound=1)
flags.DEFINE_integer("seeds", 30, "Seeds per strategy (0..n-1).", lower_bound=1)
flags.DEFINE_integer("workers", 2, "Processes running searches.", lower_bound=1)
flags.DEFINE_boolean(
    "prefix", True, "Read smaller budgets from the largest budget's runs (else run each)."
)
flags.DEFINE_string("objective", "val_accuracy", "Metric the searches maximise.")
flags.DEFINE_string("report", "test_accuracy", "Metric reported for the chosen architecture.")
flags.DEFINE_string(
    "search_metric",
    None,
    "Record path of the search signal, for every table (e.g. acc[0] for the channel "
    "tables' seed 0). Default: a random seed's accuracy per query (test_acc[*], acc[*]).",
)
flags.DEFINE_string("plot", None, "Draw best-so-far curves per table to <PREFIX>_<table>.png.")
flags.DEFINE_integer("population_size", None, "Evolution: population size P.", lower_bound=2)
flags.DEFINE_integer("sample_size", None, "Evolution: tournament size S.", lower_bound=1)
flags.DEFINE_boolean("rwa", False, "Also print each table's random-walk autocorrelation.")
flags.DEFINE_boolean("progress", True, "Report each finished (table, strategy) on stderr.")


def main(argv: list[str]) -> int:
    del argv
    from kerasnas.benchmarks import analysis, harness, tpe

    strategies, peer = _strategies()
    tables = _tables()
    budgets = [FLAGS.budget] if FLAGS.budget else _budgets()
    if peer and not tpe.optuna_available():
        if FLAGS.strategies and tpe.TPE in FLAGS.strategies:
            _usage_error(f"the tpe peer needs Optuna, which is not installed: {tpe.INSTALL_HINT}")
        print(
            f"kerasnas.benchmarks: Optuna is not installed, so the tpe peer is left out; "
            f"install it with {tpe.INSTALL_HINT}, or pass --notpe.",
            file=sys.stderr,
        )
        peer = False
    kwargs = {}
    if FLAGS.population_size is not None or FLAGS.sample_size is not None:
        kwargs["evolution"] = {
            k: v
            for k, v in (
                ("population_size", FLAGS.population_size),
                ("sample_size", FLAGS.sample_size),
            )
            if v is not None
        }
    try:
        result = harness.run(
            tables,
            strategies,
            budgets=budgets,
            seeds=FLAGS.seeds,
            tpe_peer=peer,
            objective=FLAGS.objective,
            report=FLAGS.report,
            strategy_kwargs=kwargs,
            workers=FLAGS.workers,
            prefix=FLAGS.prefix,
            progress=_progress if FLAGS.progress else None,
        )
    except (ValueError, ImportError) as err:  # ImportError: a peer's package is missing.
        _usage_error(str(err))
    if FLAGS.rwa:
        for spec in tables:
            rwa = analysis.random_walk_autocorrelation(spec.load(), FLAGS.objective, steps=5000)
            print(
                f"rwa table={spec.name} "
                + " ".join(f"lag{i + 1}={v:.3f}" for i, v in enumerate(rwa))
            )
    if FLAGS.plot:
        for path in result.plot(FLAGS.plot):
            print(f"plot written to {path}")
    for line in result.lines():
        print(line, flush=True)
    return 0


def _tables() -> list:
    from kerasnas import benchmarks
    from kerasnas.benchmarks.harness import TableSpec

    if FLAGS.table:
        if not os.path.exists(FLAGS.table):
            _usage_error(f"no table at {FLAGS.table}")
        name = FLAGS.space or next(
            (n for n, f in benchmarks.SHARED_TABLES.items() if os.path.basename(FLAGS.table) == f),
            "macro",
        )
        return [TableSpec(name, FLAGS.table, FLAGS.search_metric)]
    found = benchmarks.shared_table_paths()
    names = FLAGS.tables or list(found)
    unknown = [n for n in names if n not in benchmarks.SHARED_TABLES]
    if unknown:
        _usage_error(f"unknown table {unknown}; choose among {list(benchmarks.SHARED_TABLES)}")
    missing = [n for n in names if n not in found]
    if missing or not names:
        _usage_error(
            f"table(s) {missing or list(benchmarks.SHARED_TABLES)} not found in ../shared/data; "
            "set KERASNAS_SHARED_DATA to their folder, or pass --table=PATH"
        )
    return [TableSpec(n, found[n], FLAGS.search_metric) for n in names]


def _strategies() -> tuple[list[str], bool]:
    """The strategies to run and whether the TPE peer runs too."""
    from kerasnas.benchmarks import harness, tpe
    from kerasnas.oracles import STRATEGIES

    if FLAGS.strategies is None:
        return harness.table_strategies(), FLAGS.tpe
    names = [s for s in FLAGS.strategies if s != tpe.TPE]
    unknown = [s for s in names if s not in STRATEGIES and s not in tpe.PEERS]
    if unknown:
        known = sorted([*STRATEGIES, *tpe.PEERS])
        _usage_error(f"unknown strategy {unknown}; choose among {known}")
    usable = harness.table_strategies()
    training = [s for s in names if s not in usable and s not in tpe.PEERS]
    if training:
        _usage_error(
            f"strategy {training} trains networks itself and cannot run on a table; "
            f"choose among {usable}, tpe and gp"
        )
    return names, FLAGS.tpe or tpe.TPE in FLAGS.strategies


def _budgets() -> list[int]:
    try:
        budgets = [int(b) for b in FLAGS.budgets]
    except ValueError:
        _usage_error(f"--budgets must be whole numbers. Received: {FLAGS.budgets}")
    if not budgets or min(budgets) < 1:
        _usage_error(f"--budgets must be at least 1. Received: {FLAGS.budgets}")
    return budgets


def _progress(line: str) -> None:
    print(f"kerasnas.benchmarks: {line}", file=sys.stderr, flush=True)


def _usage_error(message: str) -> None:
    print(f"kerasnas.benchmarks: error: {message}", file=sys.stderr)
    sys.exit(2)


def run() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app.run(main)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
