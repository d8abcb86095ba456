"""Searching a recurrent cell: ENAS's RNN cell for character-level language modelling.

ENAS (Pham et al., ICML 2018) and Zoph & Le searched recurrent cells as well as
convolutional ones. `kn.spaces.RNNCellSpace` is ENAS's cell: each node reads one earlier node
and applies an activation, through a highway unit, and the cell's new state averages the nodes
no other node reads. Here a search finds a cell that predicts the next character of an English
text (Debian's `fortunes`; elsewhere kerasnas's own source code), and the cell is compared with
Keras's LSTM and GRU layers of the same size.
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")

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
# ## The text
#
# `kn.data.load("text:PATH")` cuts a text file (or a folder of them) into windows of
# `seq_len` characters: `x` holds each window's characters as integer tokens and `y` the
# same window shifted by one character, so a model learns to predict the next character.
# The splits are contiguous pieces of the text (90% / 5% / 5%). On Colab, `apt-get install
# fortunes` provides the corpus; without it, kerasnas's own source files stand in.

# %%
if "google.colab" in sys.modules and not os.path.isdir(kn.data.FORTUNES_DIR):
    os.system("apt-get -qq install fortunes > /dev/null")
corpus = kn.data.FORTUNES_DIR
if not os.path.isdir(corpus):
    corpus = os.path.dirname(kn.__file__)
text = kn.data.read_text(corpus)
SEQ_LEN = 32 if QUICK else 64
(x, y), (x_val, y_val), (x_test, y_test) = kn.data.load(f"text:{corpus}", seq_len=SEQ_LEN)
if QUICK:
    x_val, y_val, x_test, y_test = x_val[:128], y_val[:128], x_test[:128], y_test[:128]
print(f"{corpus}: {len(text):,} characters, {len(kn.data.vocabulary(text))} distinct")
print(f"{len(x)} training windows; the first: {text[:SEQ_LEN]!r}")

# %% [markdown]
# ## The search
#
# The space takes its window length from the data, and its vocabulary (`num_classes`) from
# the whole text: the validation text may hold characters that the training windows lack,
# which `fit` refuses without it (as it refuses labels no trial can learn). Each trial trains a cell
# for one epoch on part of the training windows; trials are ranked by validation bits per
# character (the cross-entropy in bits; lower is better). Regularized evolution proposes
# the cells.

# %%
TRAIN = 256 if QUICK else 4000
space = kn.spaces.RNNCellSpace(num_classes=len(kn.data.vocabulary(text)),
                               num_nodes=3 if QUICK else 8, units=16 if QUICK else 64,
                               learning_rate=2e-3)  # fmt: skip
search = kn.Search(
    space,
    strategy="evolution",
    objective=keras_tuner.Objective("val_bits_per_character", "min"),
    max_trials=2 if QUICK else 24,
    directory=OUT,
    project_name="rnn_cell",
    overwrite=True,
    seed=0,
    population_size=8,
    sample_size=3,
)
search.fit(x[:TRAIN], y[:TRAIN], validation_data=(x_val, y_val), epochs=1, batch_size=64)

# %% [markdown]
# ## The best cell
#
# An architecture is one cell: a vertex per node, labelled with its activation; `input_0` is
# the step's input with the previous state, `output` averages the loose ends.

# %%
best = search.best_architectures(1)[0]
print(space.encode(best))
show(best.plot(os.path.join(OUT, "rnn_cell.png")))

# %% [markdown]
# ## Against Keras's LSTM and GRU
#
# `space.baseline("lstm", params=n)` builds the space's model with Keras's own recurrent
# layer instead of the cell, its units chosen for about `n` weights. The best cell and both
# baselines train the same way, and their test bits per character are compared.

# %%
EPOCHS = 1 if QUICK else 6
models = {"searched cell": space.build(best)}
for kind in ("lstm", "gru"):
    models[kind] = space.baseline(kind, params=models["searched cell"].count_params())
FINAL = TRAIN if QUICK else 4 * TRAIN
for name, model in models.items():
    model.fit(x[:FINAL], y[:FINAL], epochs=EPOCHS, batch_size=64, verbose=0)
    bpc = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["bits_per_character"]
    print(f"{name:14s} {model.count_params():7,d} weights, test bits per character {bpc:.3f}")
