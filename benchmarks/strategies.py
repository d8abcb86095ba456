"""Every table strategy and Optuna's TPE on the three shared tables, at the issue's settings.

Usage: python benchmarks/strategies.py [--seeds=30] [--budgets=50,100,300] [--workers=2]
       [--tables=macro,channel_resnet,channel_mobilenet] [--strategies=...] [--plot=PREFIX]
       [--timing_repeats=3] [--no-compare]

Runs the comparison harness (`kerasnas.benchmarks.harness`, as `python -m
kerasnas.benchmarks` does) for every registered strategy that runs on a table
and the TPE peer, and prints its lines (`<strategy> mean= std= se= table= seeds=
budget=`: the test accuracy of each search's best architecture by validation
accuracy, over the seeds), then one Markdown table of mean ± standard error per
(table, budget) and strategy, the best mean of each row in bold. Last, it times
one 100-query search of each strategy on the NAS-Bench-Macro table (trial store
included; the median of `--timing_repeats` seeds) and prints
`<strategy> seconds_per_100=<x>`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare, harness, tpe  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def markdown(result: harness.Comparison) -> str:
    """Mean ± standard error per (table, budget) row and strategy column."""
    head = ["table", "budget", *result.strategies]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for table in result.tables:
        for budget in result.budgets:
            cells = result.results[table][budget]
            best = max(r.mean for r in cells.values())
            row = [table, str(budget)]
            for name in result.strategies:
                r = cells[name]
                text = f"{r.mean:.4f} ± {r.se:.4f}"
                row.append(f"**{text}**" if r.mean == best else text)
            rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def seconds_per_100(spec: harness.TableSpec, strategy: str, repeats: int) -> float:
    """Median wall time of a 100-query search of a strategy (seeds 0..repeats-1)."""
    bench = spec.load()
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        if strategy == tpe.TPE:
            tpe.peer_search(bench, 100, seed)
        else:
            with tempfile.TemporaryDirectory(dir=compare.store_root()) as tmp:
                kn.Search(
                    bench.space,
                    strategy,
                    max_trials=100,
                    seed=seed,
                    evaluator=bench,
                    directory=tmp,
                    verbose=0,
                ).fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budgets", default="50,100,300")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tables", default=None, help="default: every shared table found")
    parser.add_argument("--strategies", default=None, help="default: every table strategy")
    parser.add_argument("--plot", default=None, help="curves to <PREFIX>_<table>.png")
    parser.add_argument("--timing_repeats", type=int, default=3)
    parser.add_argument("--no-compare", dest="compare", action="store_false")
    args = parser.parse_args()
    found = kn.benchmarks.shared_table_paths(ROOT)
    names = args.tables.split(",") if args.tables else list(found)
    missing = [n for n in names if n not in found]
    if missing or not names:
        raise SystemExit(f"shared table(s) {missing or names} absent; nothing to measure")
    tables = [harness.TableSpec(n, found[n]) for n in names]
    strategies = args.strategies.split(",") if args.strategies else harness.table_strategies()
    peer = tpe.optuna_available()
    if not peer:
        print(f"optuna is not installed, so no tpe peer: {tpe.INSTALL_HINT}", file=sys.stderr)
    if args.compare:
        start = time.perf_counter()
        result = harness.run(
            tables,
            strategies,
            budgets=[int(b) for b in args.budgets.split(",")],
            seeds=args.seeds,
            tpe_peer=peer,
            workers=args.workers,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
        if args.plot:
            for path in result.plot(args.plot):
                print(f"plot written to {path}")
        for line in result.lines():
            print(line)
        print(f"\n{markdown(result)}\n")
        print(f"harness wall time {time.perf_counter() - start:.0f}s, workers={args.workers}")
    timing = tables[0] if tables[0].name == "macro" else harness.TableSpec("macro", found["macro"])
    for strategy in [tpe.TPE] * peer + strategies:
        seconds = seconds_per_100(timing, strategy, args.timing_repeats)
        print(f"{strategy} seconds_per_100={seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
