"""Compare strategies on a tabular benchmark: `python -m kerasnas.benchmarks`.

Example (the shared NAS-Bench-Macro table, 100 queries, 30 seeds):

    python -m kerasnas.benchmarks --strategies=random,evolution --budget=100 --seeds=30

prints one line per strategy, `<strategy> mean=<x> std=<y> seeds=<n> budget=<b>`,
of the reported metric of the best-by-objective architecture.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "table", None, "Path of the benchmark table (JSON). Default: the shared NAS-Bench-Macro table."
)
flags.DEFINE_enum("space", "macro", ["macro"], "The space the table indexes.")
flags.DEFINE_list("strategies", ["random", "evolution", "controller"], "Strategies to compare.")
flags.DEFINE_integer("budget", 100, "Trials (table queries) per run.", lower_bound=1)
flags.DEFINE_integer("seeds", 30, "Seeds per strategy (0..n-1).", lower_bound=1)
flags.DEFINE_string("objective", "val_accuracy", "Metric the searches maximise.")
flags.DEFINE_string("report", "test_accuracy", "Metric reported for the chosen architecture.")
flags.DEFINE_string(
    "search_metric", "test_acc[*]", "Record path of the search signal (macro table)."
)
flags.DEFINE_string("plot", None, "Optional PNG path for the best-so-far curves.")
flags.DEFINE_integer("population_size", 20, "Evolution: population size P.", lower_bound=2)
flags.DEFINE_integer("sample_size", 5, "Evolution: tournament size S.", lower_bound=1)
flags.DEFINE_boolean("rwa", False, "Also print the table's random-walk autocorrelation.")


def main(argv: list[str]) -> int:
    del argv
    from kerasnas import benchmarks
    from kerasnas.benchmarks import analysis, compare
    from kerasnas.oracles import STRATEGIES

    unknown = [s for s in FLAGS.strategies if s not in STRATEGIES]
    if unknown:
        _usage_error(f"unknown strategy {unknown}; choose among {sorted(STRATEGIES)}")
    path = FLAGS.table or benchmarks.macro_table_path()
    if path is None or not os.path.exists(path):
        _usage_error(
            f"no table at {path or '../shared/data/nas-bench-macro_cifar10.json'}; pass --table"
        )
    bench = benchmarks.load_macro(path, search_metric=FLAGS.search_metric)
    print(
        f"table {path}: {len(bench)} architectures; search on {FLAGS.objective} "
        f"({FLAGS.search_metric}), report {FLAGS.report}",
        flush=True,
    )
    results = compare.compare(
        bench,
        FLAGS.strategies,
        budget=FLAGS.budget,
        seeds=FLAGS.seeds,
        objective=FLAGS.objective,
        report=FLAGS.report,
        strategy_kwargs={
            "evolution": {
                "population_size": FLAGS.population_size,
                "sample_size": FLAGS.sample_size,
            }
        },
        plot=FLAGS.plot,
        verbose=False,
    )
    if FLAGS.rwa:
        rwa = analysis.random_walk_autocorrelation(bench, FLAGS.objective, steps=5000)
        print("rwa " + " ".join(f"lag{i + 1}={v:.3f}" for i, v in enumerate(rwa)))
    if FLAGS.plot:
        print(f"plot written to {FLAGS.plot}")
    for result in results.values():
        print(result.line(FLAGS.budget), flush=True)
    return 0


def _usage_error(message: str) -> None:
    print(f"kerasnas.benchmarks: error: {message}", file=sys.stderr)
    sys.exit(2)


def run() -> None:
    try:
        app.run(main)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
