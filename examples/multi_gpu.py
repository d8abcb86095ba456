"""Data-parallel trials on several GPUs with MirroredStrategy.

`kn.Search(..., distribution_strategy=tf.distribute.MirroredStrategy())` builds and trains
every trial's model under the strategy: each batch is split across the GPUs (replicas) and
the gradients are summed. On a machine without GPUs, quick mode splits the CPU into two
logical devices so that the same code runs with two replicas.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

QUICK = os.environ.get("KERASNAS_QUICK") == "1"  # Tiny budgets and two CPU replicas, for CI.
OUT = "kerasnas_runs"


def show(path):
    """Shows an image inline in a notebook; elsewhere prints where it is."""
    print(path)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display

        display(Image(path))


# %% [markdown]
# ## The devices
#
# Logical devices must be configured before TensorFlow first uses its devices, so this runs
# before anything else (restart the runtime to change it). With `devices=None`,
# MirroredStrategy takes every GPU (Colab gives one; the code is the same with eight).

# %%
gpus = tf.config.list_physical_devices("GPU")
if gpus and not QUICK:
    devices = None  # Every GPU.
else:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
strategy = tf.distribute.MirroredStrategy(devices)
print(f"{strategy.num_replicas_in_sync} replicas: {devices or [g.name for g in gpus]}")

# %% [markdown]
# ## The search
#
# `batch_size` is the global batch: each replica gets `batch_size / replicas` examples, so
# scale it with the number of replicas. Each trial's model is built, trained and reloaded
# under the strategy, and the exported model loads anywhere.

# %%
import kerasnas as kn  # noqa: E402

if QUICK:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("digits")
    x_train, y_train, x_val, y_val = x_train[:128], y_train[:128], x_val[:64], y_val[:64]
else:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("tfds:cifar10")

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
    max_trials=1 if QUICK else 8,
    directory=OUT,
    project_name="mirrored",
    overwrite=True,
    seed=0,
    distribution_strategy=strategy,
)
search.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    epochs=1 if QUICK else 5,
    batch_size=64 * strategy.num_replicas_in_sync,
)

# %%
show(search.plot_history(os.path.join(OUT, "mirrored_history.png")))
model = search.best_model()
print(f"its weights are {type(model.trainable_variables[0].value).__name__}s")  # One per replica.
print(f"test accuracy of the best model: {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
print(f"exported to {search.export(os.path.join(OUT, 'mirrored_best.keras'))}")

# %% [markdown]
# ## More
#
# - Several trials in parallel, each on its own GPU: `kn.distributed.launch([sys.executable,
#   "search.py"], num_workers=4, gpus_per_worker=1)` starts keras-tuner's chief and workers
#   (see the docs' "Scale and durability" page).
# - `mixed_precision=True` trains in `mixed_float16`, and `jit_compile=True` compiles each
#   model's step with XLA; both pay off on recent GPUs.
