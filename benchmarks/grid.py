"""Grid search over a whole shared table, through the public API, timed.

Usage: python benchmarks/grid.py [--tables=macro] [--directory=PATH]

For each shared table named (default: NAS-Bench-Macro, 6,561 entries): one `kn.Search(bench.space,
"grid", evaluator=bench, max_trials=<table size>)` that enumerates every
entry, with its trial store in `--directory` (default: a temporary folder on
/dev/shm when writable, as the harness does). It prints the wall time of
`fit()`, the trials run, whether the table's best entry (by mean test
accuracy) was among them, and the best trial by the search signal beside the
table's best:

    grid table=macro entries=6561 trials=6561 seconds=4.4 found_table_best=True ...
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare, harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="macro", help="Comma-separated shared table names.")
    parser.add_argument("--directory", default=None, help="Where the trial stores go.")
    args = parser.parse_args()
    found = kn.benchmarks.shared_table_paths()
    names = args.tables.split(",")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"grid.py: table(s) {missing} not found in ../shared/data")
    for name in names:
        bench = harness.TableSpec(name, found[name]).load()
        size = len(bench.table)
        best_key, best_test = bench.best("test_accuracy")
        with tempfile.TemporaryDirectory(dir=args.directory or compare.store_root()) as tmp:
            search = kn.Search(bench.space, "grid", evaluator=bench, max_trials=size, seed=0,
                               directory=tmp, project_name=name, verbose=0)  # fmt: skip
            start = time.perf_counter()
            search.fit()
            seconds = time.perf_counter() - start
            results = search.results()
            keys = {bench.space.key(search.oracle.trials[r["trial_id"]].hyperparameters.values)
                    for r in results}  # fmt: skip
        top = max(results, key=lambda r: r["score"])  # By the search signal.
        print(
            f"grid table={name} entries={size} trials={len(results)} seconds={seconds:.1f} "
            f"found_table_best={best_key in keys} table_best={best_key}:{best_test:.4f} "
            f"best_by_search_signal={top['score']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
