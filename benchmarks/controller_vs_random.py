"""The RL controller's settings against random search and evolution on the shared tables.

Usage: python benchmarks/controller_vs_random.py [--seeds=10] [--budgets=100,300]
       [--workers=2] [--variants=raw,ppo,...] [--plot=PREFIX]

Runs the comparison harness (`kerasnas.benchmarks.harness`) on every shared table
found (NAS-Bench-Macro, Channel-Bench-Macro ResNet and MobileNet): random search,
regularized evolution and the controller at its defaults, then the controller
once per other variant of its settings (`VARIANTS`: advantages not normalised
by the reward scale, learning rate, batch size, entropy bonus, PPO). Per
variant, table and budget it prints the harness line (`<name> mean= std= se=`,
the test accuracy of each search's best architecture by validation accuracy)
and the mean search signal of the first and last 50 trials: a policy that
learns samples better architectures late than early. Last, one Markdown table
of mean ± standard error per (table, budget). About 25 minutes on 2 CPU cores
at the defaults.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {
    "raw": {"normalize_advantage": False},  # Advantages in reward units.
    "lr0.03": {"learning_rate": 0.03},
    "lr0.003": {"learning_rate": 0.003},
    "batch10": {"batch_size": 10},
    "entropy0": {"entropy_weight": 0.0},
    "ppo": {"algorithm": "ppo"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", default="100,300")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "default"))
    parser.add_argument("--plot", default=None, help="default curves to <PREFIX>_<table>.png")
    args = parser.parse_args()
    found = kn.benchmarks.shared_table_paths(ROOT)
    if not found:
        raise SystemExit("no shared table in ../shared/data; nothing to measure")
    tables = [harness.TableSpec(name, path) for name, path in found.items()]
    budgets = [int(b) for b in args.budgets.split(",")]
    unknown = sorted(set(filter(None, args.variants.split(","))) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    runs = {"defaults": (["random", "evolution", "controller"], {})}
    for name in filter(None, args.variants.split(",")):
        runs[f"controller[{name}]"] = (["controller"], {"controller": VARIANTS[name]})
    rows: dict[tuple[str, int], dict[str, str]] = {}
    for label, (strategies, kwargs) in runs.items():
        result = harness.run(
            tables,
            strategies,
            budgets=budgets,
            seeds=args.seeds,
            tpe_peer=False,
            strategy_kwargs=kwargs,
            workers=args.workers,
        )
        if args.plot and label == "defaults":
            for path in result.plot(args.plot):
                print(f"plot written to {path}", flush=True)
        for table in result.tables:
            for budget in result.budgets:
                for name, r in result.results[table][budget].items():
                    shown = name if label == "defaults" else label
                    window = min(50, budget // 2)
                    first = np.nanmean(r.rewards[:, :window])
                    last = np.nanmean(r.rewards[:, budget - window : budget])
                    print(
                        f"{shown} mean={r.mean:.4f} std={r.std:.4f} se={r.se:.4f} table={table} "
                        f"seeds={len(r.final)} budget={budget} signal_first{window}={first:.4f} "
                        f"signal_last{window}={last:.4f}",
                        flush=True,
                    )
                    rows.setdefault((table, budget), {})[shown] = f"{r.mean:.4f} ± {r.se:.4f}"
        print(f"{label}: done", file=sys.stderr, flush=True)
    names = list(next(iter(rows.values())))
    print("\n| table | budget | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for (table, budget), cells in rows.items():
        print(f"| {table} | {budget} | " + " | ".join(cells[n] for n in names) + " |")


if __name__ == "__main__":
    main()
