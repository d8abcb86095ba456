"""Draws the figures of the docs (docs/img/*.png): strategy comparisons and space searches.

Usage: python benchmarks/docs_figures.py [--parts=macro,nasnet,nasbench201,nasbench101,morphism]
                                         [--seeds=30] [--budget=100] [--out=docs/img]

Runs the strategy-comparison harness (`kerasnas.benchmarks.compare`, as
`python -m kerasnas.benchmarks` does) for random search and regularized evolution on
the same seeds (every strategy on every table: `benchmarks/strategies.py`; the
controller's curves: `benchmarks/controller_vs_random.py`), and writes:

- `random_macro.png`, `evolution_macro.png`: each strategy beside random search, for its
  strategy page;
- `macro_accuracies.png`: the distribution of mean test accuracy over the whole table,
  for the space's page;
- `<part>_digits_history.png` and, but for `morphism`, `<part>_digits_pareto.png` (parts `nasnet`,
  `nasbench201`, `nasbench101`, `morphism`): a random search of a small space of that kind
  (for `morphism`: a network-morphism search of the `nasnet` part's space) on the embedded
  digits, 16 or 12 trials of 3 epochs, with real training: no table here covers those
  spaces, and morphism children are networks no table holds.

Prints the harness's line per strategy. Each part takes 2 to 5 minutes on
2 CPU cores.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(["macro", *REAL]))
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "img"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    parts = args.parts.split(",")
    if "macro" in parts:
        macro(args)
    for name in REAL:
        if name in parts:
            real_search(name, args.out)
    print(f"figures written to {args.out}")


def macro(args: argparse.Namespace) -> None:
    path = kn.benchmarks.macro_table_path(ROOT)
    if path is None:
        raise SystemExit("the shared NAS-Bench-Macro table is absent; nothing to draw")
    bench = kn.benchmarks.load_macro(path)
    title = f"NAS-Bench-Macro (CIFAR-10), {args.seeds} seeds"
    results = compare.compare(
        bench,
        ["random", "evolution"],
        budget=args.budget,
        seeds=args.seeds,
    )
    for name in results:
        subset = {n: results[n] for n in dict.fromkeys(["random", name])}
        compare.plot_curves(
            subset,
            os.path.join(args.out, f"{name}_macro.png"),
            report="test_accuracy",
            title=title,
        )
    with open(path) as f:
        table = json.load(f)
    accuracies = [record["mean_acc"] / 100 for record in table.values()]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(accuracies, bins=80, color="#4c72b0")
    ax.set_yscale("log")
    ax.set_xlabel("mean test accuracy (3 training runs)")
    ax.set_ylabel("architectures")
    ax.set_title(f"NAS-Bench-Macro: all {len(accuracies)} architectures", fontsize=9)
    ax.grid(alpha=0.3)
    fig.savefig(os.path.join(args.out, "macro_accuracies.png"), bbox_inches="tight", dpi=100)
    plt.close(fig)


#: Real-training figures: space name -> (a small space of that kind, trials).
REAL = {
    "nasnet": (
        lambda: kn.spaces.NASNetSpace(num_blocks=3, num_cells=1, num_reductions=1, filters=16),
        16,
    ),
    "nasbench201": (
        lambda: kn.spaces.NASBench201Space(stem_filters=8, cells_per_stage=1, learning_rate=0.01),
        12,
    ),
    "nasbench101": (
        lambda: kn.spaces.NASBench101Space(
            stem_filters=16, num_stacks=2, cells_per_stack=1, learning_rate=0.01
        ),
        12,
    ),
    # Morphism search on the same space as the `nasnet` random search.
    "morphism": (
        lambda: kn.spaces.NASNetSpace(num_blocks=3, num_cells=1, num_reductions=1, filters=16),
        16,
    ),
}
#: Strategy arguments of the real-training parts that are not random searches.
STRATEGY = {"morphism": ("morphism", {"initial_trials": 3, "max_params": 200_000})}


def real_search(name: str, out: str) -> None:
    """A search with real training on digits: history and Pareto figures."""
    (x, y), (x_val, y_val), _ = kn.data.load("digits")
    make_space, trials = REAL[name]
    with tempfile.TemporaryDirectory() as tmp:
        strategy, kwargs = STRATEGY.get(name, ("random", {}))
        search = kn.Search(
            make_space(),
            strategy=strategy,
            max_trials=trials,
            directory=tmp,
            seed=0,
            verbose=0,
            **kwargs,
        )
        search.fit(x, y, validation_data=(x_val, y_val), epochs=3)
        search.plot_history(os.path.join(out, f"{name}_digits_history.png"))
        if name not in STRATEGY:  # A morphism search's sizes grow by design.
            search.plot_pareto(os.path.join(out, f"{name}_digits_pareto.png"))
        scores = sorted(r["score"] for r in search.results() if r["score"] is not None)
    print(
        f"{name} ({strategy}) search on digits: {len(scores)} trials, val_accuracy "
        f"min={scores[0]:.4f} median={scores[len(scores) // 2]:.4f} best={scores[-1]:.4f}"
    )


if __name__ == "__main__":
    main()
