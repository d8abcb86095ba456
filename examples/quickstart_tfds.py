"""Quickstart: neural architecture search on a tensorflow-datasets dataset.

Searches the NASNet cell space for a classifier of MNIST (read with tensorflow-datasets),
then looks at the best architecture, evaluates the best model on the test split and exports
it as a plain Keras model. The full run trains 10 small networks for 3 epochs each: use a
GPU runtime.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kerasnas as kn  # noqa: E402

QUICK = os.environ.get("KERASNAS_QUICK") == "1"  # Tiny budgets and made-up data, for CI.
OUT = "kerasnas_runs"


def show(path):
    """Shows an image inline in a notebook; elsewhere prints where it is."""
    print(path)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display

        display(Image(path))


# %% [markdown]
# ## The data
#
# `kn.data.load("tfds:NAME")` reads any tensorflow-datasets image classification dataset
# as numpy arrays: images float32 in [0, 1], labels as class indices. MNIST has no
# validation split, so the last 10% of its training images are kept for validation.
# In quick mode, tensorflow-datasets' `mock_data` makes up random images of the right
# shape instead of downloading anything.

# %%
DATASET = "tfds:mnist"
if QUICK:
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=64):
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load(DATASET)
else:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load(DATASET)
print(f"{DATASET}: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test images")
print(f"image shape {x_train.shape[1:]}, labels {sorted(set(y_train.tolist()))}")

# %% [markdown]
# ## The search
#
# A *space* describes the candidate architectures. `NASNetSpace` stacks cells (small DAGs
# of convolutions and poolings, as in Zoph et al.'s NASNet); each cell has `num_blocks`
# blocks, and a search decides the inputs and the op of each. The *strategy* picks the
# next architecture to train: here uniform random search, the baseline every other
# strategy must beat. `fit` takes the input shape and number of classes from the data.

# %%
space = kn.spaces.NASNetSpace(
    num_blocks=1 if QUICK else 4,
    num_cells=1,
    num_reductions=1 if QUICK else 2,
    filters=8 if QUICK else 32,
)
search = kn.Search(
    space,
    strategy="random",
    objective="val_accuracy",
    max_trials=2 if QUICK else 10,
    directory=OUT,
    project_name="mnist_quickstart",
    overwrite=True,
    seed=0,
)
search.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=1 if QUICK else 3)

# %% [markdown]
# ## The results
#
# `results()` has one record per trial; each architecture is a value with a canonical
# hash (isomorphic cells hash the same), a JSON form and a drawing.

# %%
for record in search.results():
    print(
        f"trial {record['trial_id']}: arch {record['hash'][:8]} "
        f"val_accuracy={record['score']:.4f} params={record['params']:,} "
        f"time={record['train_time']:.1f}s"
    )
show(search.plot_history(os.path.join(OUT, "mnist_history.png")))

# %%
best = search.best_architectures(1)[0]
print(best.to_json()[:200], "...")
show(best.plot(os.path.join(OUT, "mnist_best_architecture.png")))

# %% [markdown]
# ## The best model
#
# `best_model()` is the best trial's trained `keras.Model`; `export()` saves it in the
# Keras format, which loads with plain `keras.models.load_model`.

# %%
import keras  # noqa: E402

model = search.best_model()
_, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy of the best model: {test_accuracy:.4f}")
path = search.export(os.path.join(OUT, "mnist_best.keras"))
reloaded = keras.models.load_model(path)
print(f"exported to {path}: {reloaded.count_params():,} parameters")
