"""Network-morphism search: children grow trained networks and inherit their weights.

Auto-Keras's search (Jin, Song & Hu, KDD 2019) trains a few random networks, then proposes
children that grow a trained network by function-preserving transforms (deeper, wider, skip
connections; Wei et al. 2016, Chen et al. 2016). A child starts from its parent's trained
weights, so a few epochs go a long way. A Gaussian process over an edit distance between
networks picks the most promising child (`mode="bayesian"`), or the best network is grown
at random (`mode="hill_climb"`, as in Elsken et al.'s NASH).
"""

# %%
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
# ## The search
#
# `strategy="morphism"` picks `kn.oracles.MorphismOracle`. `initial_trials` random
# architectures of the space are the roots; every later trial is a child of a trained
# network, grown by up to `max_ops` morphisms and bounded by `max_params`.

# %%
(x_train, y_train), (x_val, y_val), (x_test, y_test) = kn.data.load("digits")
if QUICK:
    x_train, y_train, x_val, y_val = x_train[:128], y_train[:128], x_val[:64], y_val[:64]

space = kn.spaces.NASNetSpace(
    num_blocks=1 if QUICK else 3, num_cells=1, num_reductions=1, filters=8 if QUICK else 16
)
search = kn.Search(
    space,
    strategy="morphism",
    objective="val_accuracy",
    max_trials=3 if QUICK else 20,
    directory=OUT,
    project_name="digits_morphism",
    overwrite=True,
    seed=0,
    mode="bayesian",
    initial_trials=2 if QUICK else 3,
    max_ops=3,
    max_params=200_000,
)
search.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=1 if QUICK else 3)

# %% [markdown]
# ## The family tree
#
# A child's trial values are its root architecture's decisions; its plan holds its lineage:
# the parent trial and the op strings applied to the root's model. `results()` shows them
# (`details["morph"]`), and whether the child really started from its parent's weights.

# %%
for record in search.results():
    morph = record["details"].get("morph")
    if morph is None:
        print(f"trial {record['trial_id']}: root, val_accuracy={record['score']:.4f}")
    else:
        print(
            f"trial {record['trial_id']}: child of trial {morph['parent']} "
            f"(+{len(morph['ops'])} ops from its root, inherited={morph['inherited']}), "
            f"val_accuracy={record['score']:.4f}, params={record['params']:,}"
        )
        for op in morph["ops"]:
            print(f"    {op}")
show(search.plot_history(os.path.join(OUT, "morphism_history.png")))

# %% [markdown]
# ## The best network
#
# A grown network is described by its root and ops, not by an architecture of the space,
# so `best_architectures()` refuses it; `best_model()` rebuilds it and loads its weights, and
# `export()` saves it as a plain Keras model.

# %%
model = search.best_model()
print(f"{model.count_params():,} parameters, {len(model.layers)} layers")
print(f"test accuracy of the best model: {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")
print(f"exported to {search.export(os.path.join(OUT, 'morphism_best.keras'))}")
