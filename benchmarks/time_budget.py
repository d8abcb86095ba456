"""Time budget: how close a budgeted search returns to its `time_budget`.

Usage: python benchmarks/time_budget.py [--budgets=60,600] [--spaces=nasnet,convnet]
                                        [--examples=2000] [--epochs=5]

For each space and budget, runs `kn.Search(space, time_budget=B).fit(...)` with
the space's defaults on the first `--examples` Fashion-MNIST training images
(28x28; 1,000 validation images), `--epochs` epochs a trial, and measures the
wall-clock seconds of the whole `fit()` call (input checks, trials, the final
table). Prints one line per run and, last, `worst_overrun_s=... worst_overrun_pct=...`.
The guarantee (docs/troubleshooting.md): `fit()` returns no later than the budget
plus max(2 %, 2 s).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasnas as kn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="60,600")
    parser.add_argument("--spaces", default="nasnet,convnet")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (x, y), (xv, yv), _ = kn.data.load("fashion_mnist")
    x, y, xv, yv = x[: args.examples], y[: args.examples], xv[:1000], yv[:1000]
    worst = (float("-inf"), float("-inf"))
    for budget in [float(b) for b in args.budgets.split(",")]:
        for name in args.spaces.split(","):
            space = kn.spaces.SPACES[name]()
            with tempfile.TemporaryDirectory() as tmp:
                search = kn.Search(
                    space, max_trials=1000, time_budget=budget, seed=args.seed,
                    directory=tmp, verbose=0,
                )  # fmt: skip
                start = time.perf_counter()
                search.fit(x, y, validation_data=(xv, yv), epochs=args.epochs)
                wall = time.perf_counter() - start
                done = search.completed_trials()
                best = max((t.score for t in done), default=float("nan"))
            over = wall - budget
            worst = max(worst, (over, 100 * over / budget))
            allowed = max(0.02 * budget, 2.0)
            print(
                f"space={name} budget={budget:g}s wall={wall:.1f}s overrun={over:+.1f}s "
                f"({100 * over / budget:+.1f}%) trials={len(done)} best_val_accuracy={best:.4f} "
                f"{'ok' if over <= allowed else 'OVER'}",
                flush=True,
            )
    print(f"worst_overrun_s={worst[0]:.1f} worst_overrun_pct={worst[1]:.1f}")


if __name__ == "__main__":
    main()
