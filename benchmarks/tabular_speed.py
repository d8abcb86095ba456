"""How long a 100-trial tabular search takes, keras-tuner trial store included.

Usage: python benchmarks/tabular_speed.py [--trials=100] [--repeats=5]

Runs random and evolution searches over the shared NAS-Bench-Macro table and
prints the wall-clock seconds per search (target: under 3 s), with the time a
bare loop of table lookups takes for the same trials as the floor.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = kn.benchmarks.macro_table_path(os.path.dirname(os.path.dirname(__file__)))
    if path is None:
        raise SystemExit("the shared NAS-Bench-Macro table is absent; nothing to measure")
    bench = kn.benchmarks.load_macro(path)
    rng = np.random.default_rng(0)
    archs = [bench.space.encode(bench.space.sample(rng)) for _ in range(args.trials)]
    start = time.perf_counter()
    for values in archs:
        bench.evaluate(values, rng)
    floor = time.perf_counter() - start
    print(f"bare lookups: {args.trials} in {floor * 1000:.1f} ms")
    for strategy in ("random", "evolution"):
        times = []
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                kn.Search(
                    bench.space,
                    strategy,
                    max_trials=args.trials,
                    seed=seed,
                    evaluator=bench,
                    directory=tmp,
                    verbose=0,
                ).fit()
                times.append(time.perf_counter() - start)
        print(
            f"{strategy}: {args.trials}-trial search median={statistics.median(times):.3f}s "
            f"max={max(times):.3f}s over {args.repeats} runs"
        )


if __name__ == "__main__":
    main()
