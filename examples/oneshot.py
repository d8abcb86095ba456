"""One-shot search with weight sharing: a supernet ranks, a few trials train the best.

Instead of training every candidate from scratch, one-shot search trains a single supernet
that holds every op of every edge, with weights shared by all architectures, then reads each
candidate's quality off it. `strategy="oneshot"` is Bender et al.'s uniform one-shot (path
dropout that ramps up, ghost batch norm), `"spos"` samples a single path per step, `"enas"`
lets an LSTM controller pick the paths, and `"darts"` / `"gdas"` learn architecture weights.
Here: NAS-Bench-201 cells on scikit-learn's digits.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import kerasnas as kn  # noqa: E402

QUICK = os.environ.get("KERASNAS_QUICK") == "1"  # Tiny budgets, for CI.
OUT = "kerasnas_runs"
os.makedirs(OUT, exist_ok=True)


def show(path):
    """Shows an image inline in a notebook; elsewhere prints where it is."""
    print(path)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display

        display(Image(path))


# %% [markdown]
# ## Uniform one-shot search
#
# The supernet trains for `supernet_epochs`; then `num_candidates` sampled architectures are
# scored on the validation data with the shared weights (each with its own BatchNorm
# statistics, recomputed on a few training batches), and the `max_trials` best are trained
# as ordinary trials: from scratch, or from the supernet's weights with `init="supernet"`.

# %%
(x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("digits")
if QUICK:
    x_train, y_train, x_val, y_val = x_train[:128], y_train[:128], x_val[:64], y_val[:64]

space = kn.spaces.NASBench201Space(stem_filters=4 if QUICK else 16, cells_per_stage=1)
search = kn.Search(
    space,
    strategy="oneshot",
    max_trials=1 if QUICK else 5,
    directory=OUT,
    project_name="digits_oneshot",
    overwrite=True,
    seed=0,
    supernet_epochs=1 if QUICK else 30,
    num_candidates=2 if QUICK else 50,
    retrain_epochs=1 if QUICK else 20,
)
search.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=64)

# %% [markdown]
# ## One-shot scores against trained accuracy
#
# The ranking (every candidate with its one-shot score) is in the oracle and in
# `oneshot.json`; the trials hold the accuracy of the best candidates once trained.

# %%
ranking = search.oracle.ranking
trained = {r["hash"]: r["score"] for r in search.results()}
points = [
    (entry["score"], trained[space.decode(entry["values"]).hash()])
    for entry in ranking
    if space.decode(entry["values"]).hash() in trained
]
for entry in ranking[:5]:
    print(f"{entry['score']:.4f}  {space.to_string(entry['values'])}")
fig, ax = plt.subplots(figsize=(4, 3))
ax.scatter([p[0] for p in points], [p[1] for p in points])
ax.set_xlabel("one-shot validation accuracy")
ax.set_ylabel("trained validation accuracy")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "oneshot_scores.png"))
show(os.path.join(OUT, "oneshot_scores.png"))

# %% [markdown]
# ## DARTS, and its collapse to parameter-free ops
#
# DARTS mixes every op of an edge with softmax weights and learns them on validation
# batches. On NAS-Bench-201 it tends to pick skip connections and pooling; each epoch's
# derived architecture and how many of its 6 edges are parameter-free are in the history.
# `options={"parameter_free_limit": k}` derives at most k parameter-free edges (P-DARTS);
# `options={"max_parameter_free": n}` stops the search before the argmax cell has n.

# %%
darts = kn.Search(
    space,
    strategy="darts",
    max_trials=1,
    directory=OUT,
    project_name="digits_darts",
    overwrite=True,
    seed=0,
    supernet_epochs=1 if QUICK else 20,
    num_candidates=2 if QUICK else 10,
    retrain_epochs=1 if QUICK else 20,
)
darts.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=64)
history = darts.oracle.summary["history"]
for record in history:
    print(f"epoch {record['epoch']}: {record['parameter_free']}/6 parameter-free, "
          f"{space.to_string(record['architecture'])}")  # fmt: skip

# %% [markdown]
# ## The chosen network
#
# The best trial is an ordinary Keras model: evaluate it, retrain it longer, export it.

# %%
model = search.best_model()
print(f"test accuracy of the best one-shot candidate: "
      f"{model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")  # fmt: skip
print(f"exported to {search.export(os.path.join(OUT, 'oneshot_best.keras'))}")
