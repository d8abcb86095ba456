"""Network-morphism search: descriptors, the edit distance, MorphismOracle and
weight inheritance through NasTuner."""

import glob
import json
import os

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from kerasnas.morph import descriptor, lineage
from kerasnas.morph import graph as graph_module
from kerasnas.morph.inherit import scaled_learning_rate
from tests import tiny

# Outputs of every trial's model at the start of its training, by trial number.
_STARTS: dict[int, np.ndarray] = {}
_PROBE = tiny.digits(64, 10)[0][0]


class _RecordStart(keras.callbacks.Callback):
    """Records the model's inference outputs before the first training step."""

    def on_train_begin(self, logs=None):
        _STARTS[len(_STARTS)] = self.model(_PROBE, training=False).numpy()


class _RecordRate(keras.callbacks.Callback):
    """Records the learning rate each trial's training starts with, by trial number."""

    rates: list = []  # A class attribute: keras-tuner deep-copies the callbacks of each trial.

    def on_train_begin(self, logs=None):
        _RecordRate.rates.append(float(self.model.optimizer.learning_rate))


def chain_space(**kwargs):
    config = dict(max_layers=2, filters=(8, 16), kernels=(3,), learning_rate=0.01)
    config.update(kwargs)
    return kn.spaces.ChainSpace(**config)


def graph_of(model):
    return graph_module.from_model(model)


def chain_model(values, **kwargs):
    space = chain_space(num_classes=10, input_shape=(8, 8, 1), **kwargs)
    return space.build(kn.Architecture(choices=values))


THREE = {"num_layers": 3, "layer_0/filters": 8, "layer_0/kernel": 3, "layer_1/filters": 16,
         "layer_1/kernel": 3, "layer_2/filters": 16, "layer_2/kernel": 5}  # fmt: skip


# -- Descriptors and the edit distance --------------------------------------------
def test_descriptor_of_a_chain_and_of_its_morphs():
    model = chain_model(THREE, max_layers=3, pool_every=0, kernels=(3, 5))
    d = descriptor.describe(graph_of(model))
    assert d.layers == (("conv", 8, 3), ("conv", 16, 3), ("conv", 16, 5), ("dense", 10, 1))
    assert d.skips == ()
    assert d.num_layers == 4
    deeper = descriptor.describe(graph_of(kn.morph.apply(model, "deepen:conv_1")))
    assert deeper.layers[2] == ("conv", 16, 3) and len(deeper.layers) == 5
    assert descriptor.distance(d, deeper) == pytest.approx(1.0)
    wider = descriptor.describe(graph_of(kn.morph.apply(model, "widen:conv_0:8")))
    assert descriptor.distance(d, wider) == pytest.approx(0.5)  # conv 8 -> 16
    skipped = descriptor.describe(graph_of(kn.morph.apply(model, "skip:conv_0:conv_2")))
    assert skipped.layers == d.layers  # The zero projection belongs to the skip.
    assert skipped.skips == ((0, 2, "add"),)
    assert descriptor.skip_distance(d, skipped) == 1.0
    cat = descriptor.describe(graph_of(kn.morph.apply(model, "skipcat:conv_0:conv_2")))
    assert descriptor.skip_distance(skipped, cat) == 1.0  # same skip, other merge
    for a in (d, deeper, wider, skipped, cat):
        assert descriptor.distance(a, a) == 0.0
        assert descriptor.Descriptor.from_config(json.loads(json.dumps(a.to_config()))) == a
        for b in (d, deeper, wider, skipped, cat):
            assert descriptor.distance(a, b) == pytest.approx(descriptor.distance(b, a))


def test_layer_distance_matches_a_plain_dynamic_programme():
    rng = np.random.default_rng(0)
    kinds = ["conv", "sepconv", "maxpool"]

    def random_descriptor():
        n = int(rng.integers(0, 7))
        return descriptor.Descriptor(
            tuple((kinds[rng.integers(3)], int(rng.choice([8, 16, 32])), 3) for _ in range(n)),
            (),
        )

    def reference(a, b):
        n, m = len(a.layers), len(b.layers)
        table = np.zeros((n + 1, m + 1))
        table[:, 0], table[0, :] = np.arange(n + 1), np.arange(m + 1)
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                (ka, wa, _), (kb, wb, _) = a.layers[i - 1], b.layers[j - 1]
                cost = 1.0 if ka != kb else abs(wa - wb) / max(wa, wb)
                table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1,
                                  table[i - 1, j - 1] + cost)  # fmt: skip
        return table[n, m]

    for _ in range(50):
        a, b = random_descriptor(), random_descriptor()
        assert descriptor.layer_distance(a, b) == pytest.approx(reference(a, b))


# -- The oracle, without training ---------------------------------------------------
def fake_oracle(space, scores, **kwargs):
    """A MorphismOracle whose first trials are completed roots with these scores."""
    oracle = kn.oracles.MorphismOracle(space, seed=0, max_trials=50, **kwargs)
    rng = np.random.default_rng(1)
    for i, score in enumerate(scores):
        arch = oracle.sample_new(rng)
        hp = oracle.hyperparameters.copy()
        hp.values = oracle.propose(arch)["values"]
        trial = trial_module.Trial(hp, trial_id=str(i), status="COMPLETED")
        trial.score = score
        oracle.trials[trial.trial_id] = trial
        oracle.start_order.append(trial.trial_id)
        oracle.end_order.append(trial.trial_id)
        oracle._tried_so_far.add(oracle._compute_values_hash(hp.values))
    return oracle


@pytest.mark.parametrize("mode", ["bayesian", "hill_climb"])
def test_children_grow_trained_networks_and_replay_onto_their_roots(mode):
    space = chain_space(num_classes=10, input_shape=(8, 8, 1))
    oracle = fake_oracle(space, [0.5, 0.9, 0.7], mode=mode, max_ops=2)
    keys = set()
    for n in range(4):
        trial_id = str(3 + n)
        response = oracle.populate_space(trial_id)
        values, found = response["values"], response["plan"].lineage
        assert found.parent in ("0", "1", "2") and 1 <= len(found.new_ops) <= 2
        if mode == "hill_climb":
            assert found.parent == "1"  # The best trial.
        # A child's values are its root architecture's: its lineage is in its plan.
        parent_values = oracle.trials[found.parent].hyperparameters.values
        assert values == parent_values
        # The ops replay onto the rebuilt root (layer names are deterministic).
        model = lineage.build(space, values, found.ops)
        parent_ops = found.ops[: found.parent_ops]
        assert model.count_params() > lineage.build(space, values, parent_ops).count_params()
        hp = oracle.hyperparameters.copy()
        hp.values = values
        oracle.trials[trial_id] = trial_module.Trial(hp, trial_id=trial_id, status="RUNNING")
        oracle.plans[trial_id] = response["plan"]
        keys.add(oracle.network_hash(oracle.trials[trial_id]))
    assert len(keys) == 4


def test_limits_stop_the_search_with_a_clear_message():
    space = chain_space(num_classes=10, input_shape=(8, 8, 1), max_layers=1, filters=(8,))
    oracle = fake_oracle(space, [0.5], max_layers=2, kinds=["widen"], initial_trials=1)
    params = int(lineage.build(space, oracle.trials["0"].hyperparameters.values).count_params())
    oracle.max_params = params  # Widening adds parameters: nothing fits.
    response = oracle.populate_space("1")
    assert response["status"] == trial_module.TrialStatus.STOPPED
    assert "max_params" in oracle.stop_reason and "raise the limits" in oracle.stop_reason


def test_bad_arguments_are_rejected():
    space = chain_space()
    with pytest.raises(ValueError, match="Unknown mode"):
        kn.oracles.MorphismOracle(space, mode="greedy")
    with pytest.raises(ValueError, match="max_ops"):
        kn.oracles.MorphismOracle(space, max_ops=0)
    with pytest.raises(ValueError, match="kinds"):
        kn.oracles.MorphismOracle(space, kinds=["shrink"])
    with pytest.raises(ValueError, match="max_params"):
        kn.oracles.MorphismOracle(space, max_params=-3)


# -- Searches that train -----------------------------------------------------------------
def run(tmp_path, max_trials, callbacks=(), **kwargs):
    (x, y), (xv, yv) = tiny.digits(128, 64)
    search = kn.Search(chain_space(), strategy="morphism", max_trials=max_trials, seed=0,
                       directory=tmp_path, initial_trials=2, verbose=0, **kwargs)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=2, batch_size=64,
               callbacks=list(callbacks))  # fmt: skip
    return search


@pytest.mark.usefixtures("eager")
def test_children_start_from_their_parents_function_and_keep_training(tmp_path):
    _STARTS.clear()
    search = run(tmp_path, 4, callbacks=[_RecordStart()])
    records = search.results()
    assert ["morph" not in r["details"] for r in records] == [True, True, False, False]
    (_, _), (xv, yv) = tiny.digits(128, 64)
    for number, record in enumerate(records):
        assert record["status"] == "COMPLETED"
        trial = search.oracle.trials[record["trial_id"]]
        model = search._get_tuner().load_model(trial)  # Rebuilt from root + ops, checkpoint loaded.
        _, accuracy = model.evaluate(xv, yv, verbose=0)
        assert accuracy == pytest.approx(record["score"], abs=1e-6)
        if "morph" not in record["details"]:
            continue
        assert record["details"]["morph"]["inherited"] is True
        parent = search.oracle.trials[record["details"]["morph"]["parent"]]
        parent_model = search._get_tuner().load_model(parent)
        expected = parent_model(_PROBE, training=False).numpy()
        np.testing.assert_allclose(_STARTS[number], expected, atol=1e-4)
        saved = json.loads(open(os.path.join(search.project_dir, f"trial_{number}",
                                             "morph.json")).read())  # fmt: skip
        assert saved["inherited"] is True and saved["parent"] == parent.trial_id
    with pytest.raises(ValueError, match="grown by morphism"):
        search.best_architectures(4)
    best = search.best_trials(1)[0].trial_id
    assert search.best_model().count_params() == records[int(best)]["params"]


@pytest.mark.usefixtures("eager")
def test_resume_keeps_descriptors_and_a_missing_checkpoint_trains_from_scratch(tmp_path):
    first = run(tmp_path, 3)
    assert len(first.completed_trials()) == 3
    for path in glob.glob(os.path.join(first.project_dir, "trial_*", "checkpoint*")):
        os.remove(path)
    resumed = run(tmp_path, 4)
    assert resumed.oracle._descriptors  # Read back from the oracle's saved state.
    records = resumed.results()
    assert len(records) == 4 and all(r["status"] == "COMPLETED" for r in records)
    assert records[3]["details"]["morph"]["inherited"] is False
    saved = json.loads(open(os.path.join(resumed.project_dir, "trial_3", "morph.json")).read())
    assert saved["inherited"] is False and "missing" in saved["reason"]


@pytest.mark.usefixtures("eager")
def test_inheriting_children_train_at_a_scaled_learning_rate(tmp_path):
    # Hill climbing on the parameter count (which morphisms grow), not on noisy scores:
    # trial 2 grows the larger root, trial 3 grows trial 2, a grandchild, on every run.
    objective = keras_tuner.Objective("params", "max")
    _RecordRate.rates = []
    search = run(tmp_path, 4, callbacks=[_RecordRate()], learning_rate_scale=0.25,
                 mode="hill_climb", objective=objective)  # fmt: skip
    assert _RecordRate.rates[:2] == pytest.approx([0.01, 0.01])  # The roots' own rate.
    grandchildren = 0
    for trial_id in ("2", "3"):
        found = search.oracle.plan(trial_id).lineage
        assert found.lr_scale == 0.25
        grandchildren += found.parent not in ("0", "1")
        # The rate the trial trained at: the root's times the scale, however many
        # generations back (the parent's checkpoint holds its own, already scaled, rate).
        assert _RecordRate.rates[int(trial_id)] == pytest.approx(0.01 * 0.25)
    assert grandchildren
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=5)
    scaled = scaled_learning_rate(keras.optimizers.SGD(schedule), 0.5)["config"]["learning_rate"]
    assert scaled["config"]["initial_learning_rate"] == pytest.approx(0.05)
    assert scaled["config"]["warmup_target"] == pytest.approx(0.1)


@pytest.mark.usefixtures("eager")
def test_a_child_inherits_on_a_space_that_leaves_layer_names_to_keras(tmp_path):
    # MacroSpace's layers are named by Keras's session counter; the child's ops name the
    # parent's layers as the strategy read them (kerasnas.morph.graph renumbers them).
    (x, y), (xv, yv) = tiny.digits(64, 32)
    space = kn.spaces.MacroSpace(stages=(1, 1, 1), init_channels=8, head_channels=16)
    search = kn.Search(space, strategy="morphism", max_trials=2, seed=0, directory=tmp_path,
                       initial_trials=1, verbose=0)  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=32)
    records = search.results()
    assert [r["status"] for r in records] == ["COMPLETED", "COMPLETED"]
    assert records[1]["details"]["morph"]["inherited"] is True
