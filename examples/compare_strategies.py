"""Comparing search strategies on a tabular benchmark.

Which strategy finds good architectures with the fewest trials? NAS-Bench-Macro (Su et al.,
CVPR 2021) trained every one of the 6,561 architectures of its space on CIFAR-10, three
times. With its table as the search's `evaluator`, a trial is a lookup instead of hours of
training, so random search, regularized evolution and the RL controller can be compared over
many seeds in minutes, on a CPU.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks import compare  # noqa: E402

QUICK = os.environ.get("KERASNAS_QUICK") == "1"  # Tiny budgets, for CI.
OUT = "kerasnas_runs"


def show(path):
    """Shows an image inline in a notebook; elsewhere prints where it is."""
    print(path)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display

        display(Image(path))


# %% [markdown]
# ## The table
#
# The table is found beside a kerasnas checkout (`kn.benchmarks.macro_table_path()`);
# elsewhere (Colab) it is downloaded from the benchmark's repository and checked against its
# SHA-256. `load_macro` pairs it with `kn.spaces.MacroSpace`: 8 layers, each `identity`
# (skipped), `mb_e3_k3` or `mb_e6_k5` (MobileNetV2 blocks). A query draws one of the three
# training runs' test accuracies as `val_accuracy`, the search signal, and reports their
# mean as `test_accuracy`, so the figure reported differs from the one searched on.

# %%
TABLE_URL = (
    "https://raw.githubusercontent.com/xiusu/NAS-Bench-Macro/master/data/"
    "nas-bench-macro_cifar10.json"
)
TABLE_SHA256 = "686dee8363cc21cca8c1f321ad5749454f2d9b9ca5972682e137e539bc522297"
table = kn.benchmarks.macro_table_path()
if table is None:
    import keras

    table = keras.utils.get_file("nas-bench-macro_cifar10.json", TABLE_URL, file_hash=TABLE_SHA256)
bench = kn.benchmarks.load_macro(table)
print(f"{len(bench)} architectures; metrics {list(bench.metric_names)}")

# %% [markdown]
# ## One search
#
# A tabular search is an ordinary `kn.Search` with `evaluator=bench`; `fit()` takes no data.

# %%
BUDGET = 20 if QUICK else 100
search = kn.Search(
    bench.space,
    strategy="evolution",
    objective="val_accuracy",
    max_trials=BUDGET,
    evaluator=bench,
    directory=OUT,
    project_name="macro_evolution",
    overwrite=True,
    seed=0,
    verbose=0,
    population_size=10 if QUICK else 20,  # Regularized evolution's P and S.
    sample_size=3 if QUICK else 5,
)
search.fit()
best = search.best_architectures(1)[0]
print(f"best of {BUDGET} trials: key {bench.space.key(bench.space.encode(best))}")
print(f"  {best.choices}")
print(f"  test_accuracy {search.best_trials(1)[0].metrics.get_last_value('test_accuracy'):.4f}")

# %% [markdown]
# ## The comparison
#
# `kerasnas.benchmarks.compare` runs every strategy on the same seeds and records, after each
# trial, the reported accuracy of the best architecture so far (by the search signal). The
# command line does the same: `python -m kerasnas.benchmarks --budget=100 --seeds=30
# --plot=cmp.png`.

# %%
SEEDS = 2 if QUICK else 20
results = compare.compare(
    bench,
    ["random", "evolution", "controller"],
    budget=BUDGET,
    seeds=SEEDS,
    strategy_kwargs={"evolution": {"population_size": 10 if QUICK else 20}},
    plot=os.path.join(OUT, "compare_strategies.png"),
)
show(os.path.join(OUT, "compare_strategies.png"))

# %%
for name, result in results.items():
    at = [b for b in (10, 25, 50, 100) if b <= BUDGET]
    curve = result.curves.mean(axis=0)
    print(
        f"{name:>10}: final {result.mean:.4f} +- {result.std:.4f}; best so far after "
        + ", ".join(f"{b} trials {curve[b - 1]:.4f}" for b in at)
        + f"; {result.seconds:.1f}s"
    )
top = bench.evaluate(bench.space.encode(bench.space.from_key("22212220")), np.random.default_rng(0))
print(f"the table's best architecture (22212220): test_accuracy {top['test_accuracy']:.4f}")
