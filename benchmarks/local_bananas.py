"""Local search and BANANAS against random search and regularized evolution on three tables.

Usage: python benchmarks/local_bananas.py [--seeds=10] [--budget=100] [--out=docs/img]
                                [--tables=macro,channel_resnet,channel_mobilenet]

Runs the comparison harness (`kerasnas.benchmarks.compare`) for `random`,
`evolution`, `local` and `bananas`, with their default arguments, on the same
seeds of each shared table (`kn.benchmarks.load_shared`): NAS-Bench-Macro and
the ResNet and MobileNet tables of Channel-Bench-Macro (each query answers one
training seed's accuracy as `val_accuracy`; the table's mean over seeds is
reported as `test_accuracy`). Prints the harness's line per strategy and table, and
writes `local_tables.png` and `bananas_tables.png`: per table, the mean
best-so-far `test_accuracy` (±1 std over seeds) of that strategy beside random
search and evolution. The tables are read from `../shared/data` (or
`$KERASNAS_SHARED_DATA`). About 25 minutes at 10 seeds on 2 CPU cores.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = ("random", "evolution", "local", "bananas")
TITLES = {
    "macro": "NAS-Bench-Macro",
    "channel_resnet": "Channel-Bench-Macro ResNet",
    "channel_mobilenet": "Channel-Bench-Macro MobileNet",
}


def load(table: str) -> kn.benchmarks.TabularBenchmark:
    path = kn.benchmarks.shared_table_path(table, ROOT)
    if path is None:
        raise FileNotFoundError(f"The shared table {table!r} was not found in ../shared/data.")
    return kn.benchmarks.load_shared(table, path)


def plot(results, strategy: str, path: str) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8), squeeze=False)
    for ax, (table, by_strategy) in zip(axes[0], results.items(), strict=True):
        for name in ("random", "evolution", strategy):
            result = by_strategy[name]
            mean, std = result.curves.mean(axis=0), result.curves.std(axis=0)
            x = range(1, len(mean) + 1)
            ax.plot(
                x, mean, label=f"{name} ({result.mean:.4f})", linewidth=2 if name == strategy else 1
            )
            ax.fill_between(x, mean - std, mean + std, alpha=0.15)
        ax.set_title(TITLES[table], fontsize=10)
        ax.set_xlabel("trials (table queries)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        curves = [by_strategy[n].curves.mean(axis=0) for n in ("random", "evolution", strategy)]
        low = min(curve[len(curve) // 5] for curve in curves)
        high = max(curve[-1] for curve in curves)
        if high > low:
            ax.set_ylim(low - (high - low) * 0.5, high + (high - low) * 0.3)
    axes[0][0].set_ylabel("test accuracy of best so far")
    fig.savefig(path, bbox_inches="tight", dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--tables", default="macro,channel_resnet,channel_mobilenet")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "img"))
    args = parser.parse_args()
    results = {}
    for table in args.tables.split(","):
        print(f"-- {TITLES[table]}")
        results[table] = compare.compare(
            load(table), STRATEGIES, budget=args.budget, seeds=args.seeds
        )
    os.makedirs(args.out, exist_ok=True)
    for strategy in ("local", "bananas"):
        plot(results, strategy, os.path.join(args.out, f"{strategy}_tables.png"))


if __name__ == "__main__":
    main()
