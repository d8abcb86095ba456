"""Tests of BANANAS (`strategy="bananas"`), its predictor and the spaces' encodings."""

import json
import os

import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module

import kerasnas as kn
from kerasnas.oracles._predictor import EnsemblePredictor
from kerasnas.spaces import encoding
from tests import local_test, tiny
from tests.local_test import hand_table, landscape, run_chief_and_workers, six_layers

TABLE = kn.benchmarks.macro_table_path(os.path.dirname(os.path.dirname(__file__)))


def search(space, bench, directory, max_trials, project="p", **kwargs):
    return local_test.search(
        space, bench, directory, max_trials, project, strategy="bananas", **kwargs
    )


def spearman(a, b) -> float:
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable") for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


# -- Encodings ------------------------------------------------------------------
def test_one_hot_encodes_every_decision_of_every_space():
    space = kn.spaces.ChainSpace(max_layers=3)
    arch = space.decode({"num_layers": 1, "layer_0/filters": 32, "layer_0/kernel": 5})
    vector = space.encode_one_hot(arch)
    assert vector.shape == (3 + 3 * (3 + 2),) and vector.dtype == np.float32
    assert vector.sum() == 3  # num_layers and layer 0's two decisions; the rest inactive.
    macro = kn.spaces.MacroSpace()
    assert macro.encode_one_hot(macro.from_key("01201201")).reshape(8, 3).argmax(1).tolist() == [
        0, 1, 2, 0, 1, 2, 0, 1
    ]  # fmt: skip


def test_path_encodings_of_the_cell_spaces():
    s201 = kn.spaces.NASBench201Space()
    arch = s201.decode(s201.values_from_string(kn.spaces.nasbench201.EXAMPLE_STRING))
    paths = sorted(p for _, p in encoding.cell_paths(arch.cells["cell"]))
    assert paths == [
        ("nor_conv_3x3", "avg_pool_3x3", "skip_connect"),
        ("nor_conv_3x3", "nor_conv_3x3"),
        ("nor_conv_3x3", "skip_connect"),
        ("skip_connect",),
    ]
    vector = s201.encode_paths(arch)
    assert vector.shape == (85,) and vector.sum() == 4
    s101 = kn.spaces.NASBench101Space()
    arch = s101.from_spec(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
    )
    vector = s101.encode_paths(arch)
    assert vector.shape == (364,) and vector.sum() == 2  # Paths (conv3x3), (maxpool3x3).
    # NASNet: both cells, isomorphism-invariant, truncated to fit.
    space = tiny.space()
    arch = space.sample(np.random.default_rng(0))
    permuted = kn.Architecture(
        cells={
            name: tiny.permute(cell, list(reversed(range(cell.num_vertices))))
            for name, cell in arch.cells.items()
        }
    )
    assert np.array_equal(space.encode_paths(arch), space.encode_paths(permuted))
    assert space.encode_paths(arch).shape == (2 * 2 * (1 + 3 + 9),)


def test_the_ensemble_learns_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (60, 12)).astype(np.float32)
    y = x[:, :4].sum(1) - x[:, 4:8].sum(1)
    held = rng.integers(0, 2, (40, 12)).astype(np.float32)
    predictions = []
    for _ in range(2):
        predictor = EnsemblePredictor(12, members=3)
        predictor.fit(x, y, np.random.default_rng(7))
        predictions.append(predictor.predict(held))
    assert predictions[0].shape == (40, 3)
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-5, atol=1e-5)
    truth = held[:, :4].sum(1) - held[:, 4:8].sum(1)
    assert spearman(predictions[0].mean(1), truth) > 0.8
    assert predictions[0].std(1).mean() > 0  # The members disagree: a spread to explore with.


# -- The strategy ---------------------------------------------------------------
def test_bananas_proposes_unvisited_archs_and_its_predictor_ranks_held_out_ones(tmp_path):
    space = six_layers()
    bench = hand_table(space)
    s = search(space, bench, tmp_path, 30)
    keys = [space.key(space.encode(a)) for a in archs(s)]
    assert len(keys) == 30 and len(set(keys)) == 30
    oracle = s.oracle
    assert len(oracle.finished()) == 30 and oracle.encoding == "one_hot"
    oracle.select(oracle.finished(), np.random.default_rng(1))  # A fit on all 30 trials.
    held = [a for a in space.enumerate() if oracle.is_new(a)]
    held = [held[i] for i in np.random.default_rng(0).choice(len(held), 200, replace=False)]
    predicted = oracle.predictor().predict(np.stack([oracle.encode(a) for a in held])).mean(1)
    truth = [landscape(space.key(space.encode(a))) for a in held]
    assert spearman(predicted, truth) > 0.3
    # After the random initial design the proposals climb: the best of the last 20
    # trials beats the best of the 10 random ones.
    scores = [landscape(k) for k in keys]
    assert max(scores[10:]) > max(scores[:10])


def archs(s):
    return [kn.Architecture.from_json(r["architecture"]) for r in s.results()]


@pytest.mark.parametrize("stop", [15, 20])
def test_bananas_resumes_as_if_uninterrupted(tmp_path, stop):
    space = six_layers()
    bench = hand_table(space)
    whole = [r["hash"] for r in search(space, bench, tmp_path, 30, project="whole").results()]
    search(space, bench, tmp_path, stop, project="parts")  # Mid-queue (15) or at its end (20).
    resumed = [r["hash"] for r in search(space, bench, tmp_path, 30, project="parts").results()]
    assert resumed == whole


def test_bananas_refits_when_its_state_is_lost(tmp_path):
    space = six_layers()
    bench = hand_table(space)
    search(space, bench, tmp_path, 15)
    os.remove(tmp_path / "p" / "oracle.json")  # The queue goes with it.
    s = search(space, bench, tmp_path, 25)
    hashes = [r["hash"] for r in s.results()]
    assert len(hashes) == len(set(hashes)) == 25


class CountingEvaluator:
    """A stand-in for training: the share of separable convolutions in the cells."""

    metric_names = ("val_accuracy",)

    def __init__(self, space):
        self.space = space

    def evaluate(self, values, rng=None):
        ops = [v for k, v in values.items() if "/op_" in k]
        return {"val_accuracy": sum(op == "sep_conv_3x3" for op in ops) / len(ops)}


def test_bananas_on_a_cell_space_uses_paths_and_parallel_workers_share_a_fit(tmp_path):
    space = tiny.space()
    oracle = kn.oracles.BananasOracle(space, initial_trials=4, k=3, max_trials=20, seed=0)
    assert oracle.encoding == "paths"
    oracle._set_project_dir(str(tmp_path), "cells")
    oracle.verbose = 0
    evaluator = CountingEvaluator(space)

    def finish(trial):
        oracle.update_trial(trial.trial_id, evaluator.evaluate(trial.hyperparameters.values))
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)

    for _ in range(4):
        finish(oracle.create_trial("w0"))
    # Three workers ask at once: one fit, its three proposals; none was tried before.
    running = [oracle.create_trial(f"w{i}") for i in range(3)]
    assert oracle._queue == []
    hashes = [oracle.architecture(t).hash() for t in running]
    assert len(set(hashes)) == 3
    for trial in running:
        finish(trial)
    for _ in range(13):
        finish(oracle.create_trial("w0"))
    all_hashes = [oracle.architecture(oracle.trials[t]).hash() for t in oracle.start_order]
    assert len(all_hashes) == len(set(all_hashes)) == 20


def test_candidates_hold_the_parents_neighbours(tmp_path):
    space = six_layers()  # 12 one-decision changes of each architecture.
    parent = space.from_key("012012")
    every = {a.hash() for a in space.neighbours(parent)}
    only_neighbours = dict(mutations=0, random_candidates=0)
    oracle = kn.oracles.BananasOracle(space, seed=0, **only_neighbours)
    oracle._set_project_dir(str(tmp_path), "all")
    assert {a.hash() for a in oracle.candidates([parent], np.random.default_rng(0))} == every
    oracle = kn.oracles.BananasOracle(space, seed=0, neighbours=5, **only_neighbours)
    oracle._set_project_dir(str(tmp_path), "some")
    some = [a.hash() for a in oracle.candidates([parent], np.random.default_rng(0))]
    assert len(some) == 5 and set(some) < every
    with pytest.raises(ValueError, match="cannot all be 0"):
        kn.oracles.BananasOracle(space, neighbours=0, **only_neighbours)


def test_bananas_arguments_are_checked():
    space = six_layers()
    with pytest.raises(ValueError, match="acquisition must be one of"):
        kn.oracles.BananasOracle(space, acquisition="ei")
    with pytest.raises(ValueError, match="needs a space with a path encoding"):
        kn.oracles.BananasOracle(space, encoding="paths")
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        kn.oracles.BananasOracle(space, k=0)
    oracle = kn.oracles.BananasOracle(space, acquisition="ucb", ucb_beta=0.5)
    assert oracle.acquisition == "ucb"


@pytest.mark.skipif(TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent")
def test_bananas_on_the_macro_table(tmp_path):
    assert local_test.best_of_100_macro_queries(tmp_path, "bananas") > 0.925


def test_bananas_runs_as_chief_and_workers(tmp_path):
    run_chief_and_workers(tmp_path, "bananas", initial_trials=4, k=3)
    with open(tmp_path / "cw" / "oracle.json") as f:
        assert "queue" in json.load(f)  # The chief's fits were saved with its state.


def test_proxy_features_reach_the_predictor_standardised(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    s = kn.Search(
        space, "bananas", initial_trials=2, k=1, max_trials=3, parents=1, mutations=2,
        neighbours=1, random_candidates=1, train_steps=5, proxy_features=("naswot", "flops"),
        seed=0, directory=str(tmp_path), project_name="p", verbose=0,
    )  # fmt: skip
    s.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=64)
    oracle = s.oracle
    finished = oracle.finished()
    assert len(finished) == 3
    # The third trial came from a fit: every trial's and candidate's proxies were computed.
    trained = [oracle.architecture(t) for t in finished]
    assert {a.hash() for a in trained} <= set(oracle._proxies) and len(oracle._proxies) > 3
    width = len(oracle.encode(trained[0]))
    assert oracle.predictor().input_dim == width + 2
    # Column by column: naswot as computed, FLOPs as log10(1 + FLOPs).
    model = space.build_model(trained[0])
    assert oracle._proxies[trained[0].hash()][1] == pytest.approx(
        np.log10(1 + kn.proxies.flops(model))
    )
    rows = np.stack([oracle.encode(a) for a in trained])
    with_proxies, _ = oracle.with_proxies(trained, rows, trained, rows)
    assert with_proxies.shape == (3, width + 2)
    np.testing.assert_allclose(with_proxies[:, width:].mean(axis=0), 0.0, atol=1e-9)


def test_proxy_features_need_the_trial_runner_and_known_names():
    space = tiny.fast_space()
    with pytest.raises(ValueError, match="Unknown proxy name"):
        kn.oracles.BananasOracle(space, proxy_features=("accuracy",))
    oracle = kn.oracles.BananasOracle(space, proxy_features=("naswot",))
    with pytest.raises(ValueError, match="prepare hook"):
        oracle.proxy_values([space.sample(np.random.default_rng(0))])
