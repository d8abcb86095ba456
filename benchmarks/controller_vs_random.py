"""The RL controller against random search on the NAS-Bench-Macro table.

Usage: python benchmarks/controller_vs_random.py [--seeds=20] [--budget=100]

Searches on one training seed's test accuracy drawn at random per query and
reports the chosen architecture's mean accuracy over seeds (`test_accuracy`).
Prints, per strategy, the final mean and std over seeds and the mean sampled
reward (the search signal of each trial) over the first and last 20 trials,
which shows whether the policy learns.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    args = parser.parse_args()
    path = kn.benchmarks.macro_table_path(os.path.dirname(os.path.dirname(__file__)))
    if path is None:
        raise SystemExit("the shared NAS-Bench-Macro table is absent; nothing to measure")
    bench = kn.benchmarks.load_macro(path)
    runs = {
        "random": ("random", {}),
        "controller_reinforce": ("controller", {"algorithm": "reinforce"}),
        "controller_ppo": ("controller", {"algorithm": "ppo"}),
    }
    results = {}
    for label, (strategy, kwargs) in runs.items():
        result = compare.compare(
            bench,
            [strategy],
            budget=args.budget,
            seeds=args.seeds,
            strategy_kwargs={strategy: kwargs},
            verbose=False,
        )[strategy]
        results[label] = result
        window = min(20, args.budget // 2)
        first = np.nanmean(result.rewards[:, :window], axis=1)
        last = np.nanmean(result.rewards[:, -window:], axis=1)
        print(
            f"{label}: final test_accuracy mean={result.mean:.4f} std={result.std:.4f} | "
            f"sampled reward first{window}={first.mean():.4f}±{first.std():.4f} "
            f"last{window}={last.mean():.4f}±{last.std():.4f} | {result.seconds:.1f}s",
            flush=True,
        )
    for label, result in results.items():
        print(
            f"{label} mean={result.mean:.4f} std={result.std:.4f} seeds={args.seeds} "
            f"budget={args.budget}"
        )


if __name__ == "__main__":
    main()
