"""Architecture search with a reinforcement-learning controller.

Zoph & Le's controller ("Neural Architecture Search with Reinforcement Learning", ICLR 2017)
is an LSTM policy that emits one softmax per decision of the search space; each trained
architecture's validation accuracy is its reward, and REINFORCE (or PPO) makes good
architectures more likely. This example runs it on real training (the embedded 8x8 digits),
then watches the policy learn on the NAS-Bench-Macro table, where a trial is a lookup.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402

QUICK = os.environ.get("KERASNAS_QUICK") == "1"  # Tiny budgets, for CI.
OUT = "kerasnas_runs"


def show(path):
    """Shows an image inline in a notebook; elsewhere prints where it is."""
    print(path)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display

        display(Image(path))


# %% [markdown]
# ## Searching with real training
#
# `strategy="controller"` picks `kn.oracles.ControllerOracle`; its arguments pass through
# `kn.Search`: `batch_size` architectures per policy update, `algorithm="reinforce"` or
# `"ppo"`, `reward="cubed"` (Zoph & Le cube the accuracy), `entropy_weight`, and more
# (see the strategy's docs page). An architecture sampled twice is not trained again, and
# the policy learns from each trained one once; advantages are scaled by the rewards' spread,
# so accuracies a few thousandths apart still teach.

# %%
(x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("digits")
if QUICK:
    x_train, y_train, x_val, y_val = x_train[:128], y_train[:128], x_val[:64], y_val[:64]

space = kn.spaces.NASNetSpace(
    num_blocks=1 if QUICK else 3,
    num_cells=1,
    num_reductions=1,
    filters=8 if QUICK else 16,
)
search = kn.Search(
    space,
    strategy="controller",
    objective="val_accuracy",
    max_trials=2 if QUICK else 30,
    directory=OUT,
    project_name="digits_controller",
    overwrite=True,
    seed=0,
    batch_size=2 if QUICK else 5,  # Architectures per policy update.
    algorithm="reinforce",
)
search.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=1 if QUICK else 4)

# %%
oracle = search.oracle
print(f"{oracle.updates} policy updates, baseline {oracle.baseline}")
show(search.plot_history(os.path.join(OUT, "controller_history.png")))
model = search.best_model()
print(f"test accuracy of the best model: {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

# %% [markdown]
# A search stopped midway resumes with the same policy: run the same `kn.Search(...)` with
# `overwrite=False` and a larger `max_trials`. The policy's weights are saved in the project
# folder (`controller.npz`), its baseline and pending samples with the oracle's state.
#
# ## Watching the policy learn, on a tabular benchmark
#
# NAS-Bench-Macro (Su et al., CVPR 2021) trained all 6,561 architectures of its space on
# CIFAR-10. With the table as the search's `evaluator`, each trial is a lookup, so hundreds
# of trials take seconds. The table is found beside a kerasnas checkout; elsewhere (Colab)
# it is downloaded from the benchmark's repository and checked against its SHA-256.

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
print(f"{len(bench)} architectures in {table}")

# %%
budget = 30 if QUICK else 300
search = kn.Search(
    bench.space,
    strategy="controller",
    objective="val_accuracy",
    max_trials=budget,
    evaluator=bench,
    directory=OUT,
    project_name="macro_controller",
    overwrite=True,
    seed=0,
    verbose=0,
)
best = bench.space.from_key("22212220")  # The table's best architecture.
before = search.oracle.log_prob([best])[0]
search.fit()
after = search.oracle.log_prob([best])[0]
scores = np.array([r["score"] for r in search.results()])
batches = scores[: len(scores) // 10 * 10].reshape(-1, 10).mean(axis=1)
print("mean reward per 10 trials:", " ".join(f"{b:.3f}" for b in batches))
print(f"log-probability of the best architecture: {before:.2f} before, {after:.2f} after")
print(f"best found: {search.results()[int(search.best_trials(1)[0].trial_id)]['score']:.4f}")
