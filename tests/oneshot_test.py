"""One-shot search: the NAS-Bench-201 supernet, the methods, and the one-shot strategies."""

import ast
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasnas as kn
from kerasnas.oneshot import methods
from kerasnas.oneshot.nasbench201 import NASBench201Supernet, live_edges
from kerasnas.oneshot.supernet import GhostBatchNorm
from kerasnas.oneshot.train import OneShotTrainer, path_dropout, single_path
from kerasnas.spaces.nasbench201 import EDGE_OPS, EDGES, edge_name
from tests import tiny


def nb201(**kwargs) -> kn.spaces.NASBench201Space:
    config = dict(num_classes=10, input_shape=(8, 8, 1), stem_filters=4, cells_per_stage=1)
    config.update(kwargs)
    return kn.spaces.NASBench201Space(**config)


#: The smallest space with a supernet: one normal cell of one block, whose two branches each
#: take a 3x3 convolution or a skip of either cell input. Its supernet builds and traces
#: several times faster than NAS-Bench-201's (3 cells of 6 edges of 5 ops), for the tests of
#: what any supernet shows: the methods' runs and rankings, distributed weight steps.
SMALL_NASNET = dict(
    num_classes=10, input_shape=(8, 8, 1), num_blocks=1, num_cells=1, num_reductions=0,
    filters=4, ops=("conv_3x3", "identity"),
)  # fmt: skip


def datasets(train: int = 256, val: int = 128, batch: int = 64):
    (x, y), (xv, yv) = tiny.digits(train=train, val=val)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    val_ds = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(128)
    return train_ds, val_ds


def values_from(space, text):
    return space.values_from_string(text)


@pytest.fixture(scope="module")
def supernet():
    """An untrained NAS-Bench-201 supernet, for the tests that only read it (never train it)."""
    return NASBench201Supernet(nb201())


@pytest.fixture(scope="module")
def trained():
    """A NAS-Bench-201 supernet after one SPOS epoch on digits."""
    space = nb201()
    net = NASBench201Supernet(space)
    train_ds, val_ds = datasets()
    trainer = OneShotTrainer(net, total_steps=4)
    with tiny.eagerly():  # The tests compare numbers, the same in either mode.
        trainer.train_epoch(train_ds, single_path(net), np.random.default_rng(0), 0, 4)
    return space, net, trainer, train_ds, val_ds


def test_extracted_models_compute_the_supernet_path(trained):
    space, net, trainer, train_ds, _ = trained
    (_, _), (xv, _) = tiny.digits(val=64)
    rng = np.random.default_rng(3)
    strings = [
        # node 1 unreachable: its outgoing edges are dead and pruned
        "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|",
        # no path reaches the output: the cell computes zeros
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ]
    cases = [space.values_from_string(s) for s in strings]
    cases += [net.values_of(net.sample_indices(rng)) for _ in range(3)]
    for values in cases:
        path = net.path(values)
        trainer.calibrate(train_ds, path, batches=2)
        model = net.extract(values)
        reference = space.build_model(space.decode(values))
        assert model.count_params() == reference.count_params(), space.key(values)
        expected = tf.nn.softmax(net(xv, path, path)).numpy()
        np.testing.assert_allclose(model(xv, training=False), expected, atol=1e-4)
        assert model.get_layer("classifier").activation.__name__ == "softmax"


def test_paths_round_trip_through_decision_values(supernet):
    net = supernet
    assert [s.name for s in net.slots] == [edge_name(j, i) for j, i in EDGES]
    rng = np.random.default_rng(0)
    for _ in range(20):
        indices = net.sample_indices(rng)
        values = net.values_of(indices)
        assert net.indices(values) == indices
        path = net.path(values)
        assert path.shape == (6, len(EDGE_OPS)) and (path.sum(axis=1) == 1).all()
    with pytest.raises(ValueError, match="one candidate index per slot"):
        net.values_of([0, 1])


def test_live_edges_prune_what_cannot_reach_the_output():
    space = nb201()
    values = space.values_from_string(
        "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
    )
    # Node 1 has no input; node 2 does not reach the output.
    assert live_edges(values) == [EDGES.index((3, 0))]
    values = space.values_from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|"
    )
    assert live_edges(values) == [0, 1, 2, 5]


def test_ghost_batch_norm_normalises_each_ghost_batch_and_calibrates_exactly():
    layer = GhostBatchNorm(affine=False, virtual_batch_size=4)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(5, 2, (4, 3)), rng.normal(-3, 1, (4, 3))]).astype("float32")
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y[:4].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y[4:].mean(axis=0), 0, atol=1e-5)
    # A batch that is no multiple of the ghost size is normalised as one, eagerly and traced
    # with an unknown batch size.
    odd = x[:6]
    whole = (odd - odd.mean(axis=0)) / np.sqrt(odd.var(axis=0) + layer.epsilon)
    np.testing.assert_allclose(layer(odd, training=True).numpy(), whole, atol=1e-5)
    traced = tf.function(
        lambda t: layer(t, training=True), input_signature=[tf.TensorSpec((None, 3))]
    )
    np.testing.assert_allclose(traced(odd).numpy(), whole, atol=1e-5)
    np.testing.assert_allclose(traced(x).numpy(), y, atol=1e-5)
    layer.reset_statistics()
    batches = [rng.normal(m, 1, (16, 3)).astype("float32") for m in (1.0, 2.0, 6.0)]
    for b in batches:
        layer(b, calibrate=True)
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), np.mean([b.var(axis=0) for b in batches], axis=0), rtol=1e-4
    )


def test_path_dropout_ramps_up_and_keeps_a_candidate_per_slot(supernet):
    net = supernet
    sample = path_dropout(net, drop_max=0.9)
    rng = np.random.default_rng(0)
    start, _ = sample(0, 1000, rng)
    assert (start == 1).all()  # No dropout at the start.
    kept_late = []
    for _ in range(200):
        weights, active = sample(1000, 1000, rng)
        assert (weights == active).all()
        assert (weights.sum(axis=1) >= 1).all()
        kept_late.append(weights.sum())
    # r = 0.9: each of 5 candidates is dropped with probability 0.9 ** (1/5) = 0.979.
    assert np.mean(kept_late) < 1.5 * 6
    with pytest.raises(ValueError, match="drop_max"):
        path_dropout(net, drop_max=1.0)


def test_fair_single_paths_train_every_candidate_equally_often(supernet):
    net = supernet
    sample = single_path(net, fair=True)
    rng = np.random.default_rng(0)
    counts = sum(sample(step, 100, rng)[0] for step in range(50))
    assert (counts == 10).all()  # 50 steps = 10 rounds of 5: each op 10 times per edge.


def test_only_active_candidates_are_regularised(supernet):
    space, net = supernet.space, supernet
    skips = net.path(values_from(space, "|skip_connect~0|+|skip_connect~0|none~1|+|"
                                 "none~0|none~1|skip_connect~2|"))  # fmt: skip
    convs = net.path(values_from(space, "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|"
                                 "none~0|none~1|skip_connect~2|"))  # fmt: skip
    shared = float(sum(np.sum(np.square(v)) for v in net.shared_kernels()))
    assert float(net.regularization(skips)) == pytest.approx(shared, rel=1e-5)
    k = EDGE_OPS.index("nor_conv_3x3")
    cells = [block for block in net.blocks if hasattr(block, "edges")]
    assert len(cells) == 3  # One per stage: edge 0's conv has its own weights in each.
    convs_l2 = sum(float(np.sum(np.square(c.edges[0].candidates[k].conv.kernel))) for c in cells)
    assert float(net.regularization(convs)) == pytest.approx(shared + convs_l2, rel=1e-5)


@pytest.mark.parametrize("method", ["uniform", "enas", "gdas"])
def test_methods_rank_distinct_candidates(method):
    space = kn.spaces.NASNetSpace(**SMALL_NASNET)
    net = methods.build_supernet(space)
    train_ds, val_ds = datasets()
    options = {"controller_steps": 10, "controller_batch": 5} if method == "enas" else {}
    if method == "uniform":  # Adam on the shared weights, ranked by accuracy.
        options = {"optimizer": "adam", "learning_rate": 3e-3, "rank_by": "accuracy"}
    result = methods.run(
        method, net, train_ds, val_ds, epochs=2, num_candidates=4, seed=0, progress=False,
        **options,
    )  # fmt: skip
    if method == "uniform":
        assert isinstance(result.trainer.optimizer, keras.optimizers.Adam)
    assert len(result.history) == 2
    assert result.history[1]["loss"] < result.history[0]["loss"] + 0.5
    assert 1 <= len(result.ranking) <= 4
    hashes = {space.decode(v).hash() for v in result.ranking}
    assert len(hashes) == len(result.ranking)
    if method in ("uniform", "enas"):  # best first
        assert result.scores == sorted(result.scores, reverse=True)
    if method == "uniform":  # one-shot accuracies
        assert all(0.0 <= s <= 1.0 for s in result.scores)
    if method == "enas":  # minus one-shot validation losses (the default)
        assert all(s < 0.0 for s in result.scores)
        path = net.path(net.indices(result.ranking[0]))
        result.trainer.calibrate(result.calibration, path, 10)
        assert -result.trainer.loss(val_ds, path) == pytest.approx(result.scores[0], rel=1e-5)
    if method == "enas":
        assert all("reward" in h for h in result.history)


@pytest.mark.usefixtures("eager")
def test_darts_learns_alpha_and_stops_early_on_parameter_free_ops():
    space = nb201()
    train_ds, val_ds = datasets()
    net = NASBench201Supernet(space)
    result = methods.run(
        "darts", net, train_ds, val_ds, epochs=3, num_candidates=3, seed=0, progress=False,
        max_parameter_free=1, arch_learning_rate=0.05,
    )  # fmt: skip
    first = result.history[0]
    assert first["parameter_free"] >= 1  # The remedy fired on the first epoch ...
    assert len(result.history) == 1  # ... and stopped the search.
    assert result.ranking[0] == first["architecture"]  # No earlier arch: this one.
    with pytest.raises(ValueError, match="max_parameter_free"):
        methods.run("darts", net, train_ds, val_ds, epochs=1, max_parameter_free=7)


def test_parameter_free_limit_gives_way_to_the_best_op_with_weights(supernet):
    net = supernet  # Darts and the trainer only read it.
    trainer = OneShotTrainer(net, total_steps=1)
    darts = methods.Darts(net, trainer, parameter_free_limit=2, seed=0)
    free, valid = darts.parameter_free, darts.valid > 0
    alpha = np.zeros(valid.shape, "float32")
    weighted = []
    for s in range(net.num_slots):
        # Every slot's argmax is parameter-free, more strongly in later slots; the runner-up
        # with weights differs from slot to slot.
        alpha[s, np.flatnonzero(free[s] & valid[s])[0]] = 1.0 + s
        w = np.flatnonzero(~free[s] & valid[s])[s % 2]
        alpha[s, w] = 0.5
        weighted.append(int(w))
    darts.alpha.assign(alpha)
    assert darts.count_parameter_free(darts.argmax()) == 6
    derived = darts.derive()
    assert darts.count_parameter_free(derived) == 2
    assert derived[4:] == darts.argmax()[4:]  # the two strongest parameter-free slots stay
    assert derived[:4] == weighted[:4]  # the others take their best candidate with weights
    darts.parameter_free_limit = None
    assert darts.derive() == darts.argmax()
    with pytest.raises(ValueError, match="parameter_free_limit"):
        methods.Darts(net, trainer, parameter_free_limit=6)


def test_second_order_darts_matches_the_exact_unrolled_gradient():
    """The virtual step and finite-difference Hessian-vector product against nested tapes.

    A smooth stand-in for the network's loss (the real one has ReLU kinks, where
    finite differences of gradients are not meant to agree with autodiff) that
    couples alpha and the supernet's weights and depends on the batch.
    """
    space = nb201(input_shape=(4, 4, 1), stem_filters=2)
    net = NASBench201Supernet(space)
    trainer = OneShotTrainer(net, total_steps=1, weight_decay=0.0)
    darts = methods.Darts(net, trainer, order=2, seed=0)
    rng = np.random.default_rng(0)
    variables = net.trainable_variables
    coupling = [rng.normal(size=darts.valid.shape).astype("float32") for _ in variables]

    def smooth_loss(x, y, weights, active):
        scale = 1.0 + tf.reduce_mean(x) + 0.01 * tf.reduce_mean(tf.cast(y, "float32"))
        return tf.add_n(
            [
                tf.reduce_sum(tf.tanh(v * scale)) * tf.reduce_sum(weights * c)
                for v, c in zip(variables, coupling, strict=True)
            ]
        )

    darts._loss = smooth_loss
    xt, xv = (rng.normal(size=(16, 4, 4, 1)).astype("float32") for _ in range(2))
    yt, yv = (rng.integers(0, 10, 16).astype("int32") for _ in range(2))
    darts.alpha.assign(rng.normal(0, 0.5, darts.alpha.shape).astype("float32"))
    xi = 0.01
    before = [v.numpy() for v in variables]
    found = darts._unrolled_gradient(xv, yv, xt, yt, tf.constant(xi)).numpy()
    for v, b in zip(variables, before, strict=True):  # The weights are restored.
        np.testing.assert_array_equal(v.numpy(), b)

    valid = tf.constant(darts.valid)

    def loss(x, y):
        return smooth_loss(x, y, tf.nn.softmax(darts.alpha + darts._mask, -1), valid)

    # Exact: dL_val/dalpha at w' = w - xi * dL_train/dw, minus xi times the Hessian-vector
    # product d/dalpha (dL_train/dw . v), v = dL_val/dw at w', by nested tapes.
    with tf.GradientTape() as tape:
        train_loss = loss(xt, yt)
    grads = tape.gradient(train_loss, variables)
    for v, g in zip(variables, grads, strict=True):
        v.assign_sub(xi * g)
    with tf.GradientTape() as tape:
        val_loss = loss(xv, yv)
    found_grads = tape.gradient(val_loss, [darts.alpha, *variables])
    d_alpha, vector = found_grads[0], found_grads[1:]
    for v, b in zip(variables, before, strict=True):
        v.assign(b)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            train_loss = loss(xt, yt)
        grads = inner.gradient(train_loss, variables)
        dot = tf.add_n([tf.reduce_sum(g * u) for g, u in zip(grads, vector, strict=True)])
    hessian_term = xi * outer.gradient(dot, darts.alpha).numpy()
    exact = d_alpha.numpy() - hessian_term
    assert np.abs(hessian_term).max() > 0.05 * np.abs(exact).max()  # The term matters here.
    np.testing.assert_allclose(found, exact, atol=1e-3 * np.abs(exact).max() + 1e-6)


def test_one_shot_strategy_trains_ranked_candidates_and_resumes(tmp_path, capsys):
    (x, y), (xv, yv) = tiny.digits(train=256, val=128)
    keras.utils.set_random_seed(0)  # The supernet's initial weights, whatever ran before.

    def search(max_trials):
        return kn.Search(
            # The small NASNet space: what is tested is the strategy's path, not NAS-Bench-201.
            kn.spaces.NASNetSpace(**{**SMALL_NASNET, "num_classes": None, "input_shape": None}),
            strategy="spos", max_trials=max_trials,
            directory=tmp_path, seed=0, supernet_epochs=1, num_candidates=4, init="supernet",
            retrain_epochs=1,
        )  # fmt: skip

    first = search(1).fit(x, y, validation_data=(xv, yv), batch_size=64)
    results = first.results()
    assert [r["status"] for r in results] == ["COMPLETED"]
    summary = json.loads((tmp_path / "search" / "oneshot.json").read_text())
    assert summary["method"] == "spos" and len(summary["ranking"]) == 4
    # The supernet's training counts against the time budget (the runner's prepare time).
    assert first._get_tuner()._prepare_seconds >= summary["train_time"] > 0
    ranked = [first.space.decode(e["values"]).hash() for e in summary["ranking"]]
    assert [r["hash"] for r in results] == ranked[:1]  # The best-ranked candidate first.
    trial = first.oracle.get_trial(results[0]["trial_id"])
    assert trial.metrics.get_last_value("inherited") == 1.0
    assert trial.metrics.get_last_value("val_accuracy") > 0.1
    assert os.path.exists(tmp_path / "search" / "oneshot" / "supernet.weights.h5")
    assert isinstance(first.best_model(), keras.Model)
    capsys.readouterr()

    resumed = search(2).fit(x, y, validation_data=(xv, yv), batch_size=64)
    out = capsys.readouterr().out
    assert "ranking of 4 candidates restored" in out
    assert "supernet epoch" not in out
    results = resumed.results()
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED"]
    assert [r["hash"] for r in results] == ranked[:2]  # Trials follow the ranking.


def test_method_options_are_typed_and_checked():
    assert list(methods.METHODS) == ["uniform", "spos", "enas", "darts", "gdas"]
    assert methods.parse_options("darts", {"order": 2}) == kn.oneshot.DartsOptions(order=2)
    assert methods.parse_options("uniform", {}).ghost_batch_size == 32  # SPOS's is None.
    bad = [
        ("darts", {"order": 3}, "order must be 1 or 2"),
        ("darts", {"arch_learning_rate": 0}, "arch_learning_rate must be a positive number"),
        ("darts", {"max_parameter_free": 0}, "max_parameter_free must be None or an integer >= 1"),
        ("uniform", {"drop_max": 1.0}, r"drop_max must be a number in \[0, 1\)"),
        ("spos", {"ghost_batch_size": 0}, "ghost_batch_size must be a positive integer"),
        ("spos", {"fair": "yes"}, "fair must be True or False"),
        ("enas", {"algorithm": "a2c"}, r"algorithm must be one of \['reinforce', 'ppo'\]"),
        ("enas", {"controller_steps": 0}, "controller_steps must be an integer >= 1"),
        ("gdas", {"tau_min": 2.0, "tau_max": 1.0}, r"tau_max must be a number >= tau_min"),
        ("gdas", {"order": 2}, r"do not apply to the 'gdas' method; it takes \['arch_learning"),
    ]
    for method, options, message in bad:
        with pytest.raises(ValueError, match=message):
            methods.parse_options(method, options)
    with pytest.raises(ValueError, match="Unknown one-shot method 'nao'"):
        methods.run("nao", None, None, None)


def test_the_one_shot_package_and_the_policy_do_not_import_the_oracles():
    """No cycle oracles <-> oneshot: imports anywhere in the files, functions included."""
    root = pathlib.Path(kn.__file__).parent

    def imports(path):
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        return names

    for path in [*(root / "oneshot").glob("*.py"), root / "policy.py"]:
        found = [n for n in imports(path) if n.startswith("kerasnas.oracles")]
        assert not found, (path, found)
    assert not [n for n in imports(root / "policy.py") if n.startswith("kerasnas.oneshot")]


def test_one_shot_strategies_explain_bad_input(tmp_path, supernet):
    (x, y), _ = tiny.digits(train=64, val=32)
    with pytest.raises(ValueError, match="validation_data"):
        kn.Search(nb201(), strategy="darts", directory=tmp_path).fit(x, y)
    with pytest.raises(ValueError, match="no supernet for MacroSpace"):
        methods.build_supernet(kn.spaces.MacroSpace(num_classes=10, input_shape=(8, 8, 1)))
    with pytest.raises(ValueError, match="init must be one of"):
        kn.Search(nb201(), strategy="enas", directory=tmp_path, init="pretrained")
    with pytest.raises(ValueError, match="num_candidates"):
        kn.Search(nb201(), strategy="oneshot", max_trials=5, num_candidates=3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        kn.Search(nb201(), strategy="spos", directory=tmp_path, optimizer="rmsprop")
    net = supernet  # Each run below fails before it trains or changes the supernet.
    train_ds, val_ds = datasets(train=64, val=32)
    with pytest.raises(ValueError, match="do not apply to the 'spos' method"):
        methods.run("spos", net, train_ds, val_ds, epochs=1, order=2)
    with pytest.raises(ValueError, match="candidates= applies to the 'uniform' and 'spos'"):
        methods.run("darts", net, train_ds, val_ds, epochs=1, candidates=[])
    with pytest.raises(ValueError, match="ghost_batch_size=24 must divide"):
        methods.run("uniform", net, train_ds, val_ds, epochs=1, ghost_batch_size=24)


MIRRORED_STEP = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import kerasnas as kn
    from kerasnas.oneshot import methods
    from kerasnas.oneshot.train import OneShotTrainer

    keras.utils.set_random_seed(0)  # The same initial weights, so the same differences, each run.
    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(**SPACE)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = methods.build_supernet(space)
    mirrored = methods.build_supernet(space, strategy)
    mirrored.set_weights(single.get_weights())
    for net in (single, mirrored):
        net.set_virtual_batch_size(32)  # A replica's half batch is one ghost batch.
    # Every branch a convolution (with its ghost BatchNorm).
    path = single.path([[op for _, op in s.candidates].index("conv_3x3") for s in single.slots])
    ds = tf.data.Dataset.from_tensor_slices((x[:64], y[:64].astype("int32"))).batch(64)
    results = []
    for net, dist in ((single, None), (mirrored, strategy)):
        trainer = OneShotTrainer(net, total_steps=1, distribution_strategy=dist)
        for xb, yb in trainer.distribute(ds):
            loss = trainer.train_step(xb, yb, path, path)[0]
        results.append((loss, [w.copy() for w in net.get_weights()]))
    print("VARIABLE", type(mirrored.trainable_variables[0].value).__name__)
    print("LOSS", results[0][0], results[1][0])
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(results[0][1], results[1][1])])
    print("MAXDIFF", float(diffs.max()))
    print("MEANDIFF", float(diffs.mean()))
    train = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(64)
    val = tf.data.Dataset.from_tensor_slices((xv[:64], yv[:64])).batch(64)
    for method in ("darts",):  # Weight steps on both replicas, alpha steps on one device.
        result = methods.run(method, mirrored, train, val, epochs=1, num_candidates=2,
                             progress=False, distribution_strategy=strategy)
        print("RAN", method, len(result.ranking))
    """
).replace("SPACE", repr(SMALL_NASNET))


def test_weight_steps_under_mirrored_strategy_match_one_device(tmp_path):
    script = tmp_path / "mirrored_oneshot.py"
    script.write_text(MIRRORED_STEP)
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line}
    assert "Mirrored" in lines["VARIABLE"][0]
    single_loss, mirrored_loss = map(float, lines["LOSS"])
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-4)
    # Equal up to float rounding; a rounding difference that flips a ReLU or a max-pool
    # choice changes a few weights by a step's size (0.006 seen once), while a wrong
    # all-reduce (a sum, one replica's gradient) would change every weight.
    assert float(lines["MEANDIFF"][0]) < 1e-4
    assert float(lines["MAXDIFF"][0]) < 0.05
    assert "RAN darts" in run.stdout


def test_rank_by_is_checked():
    space = kn.spaces.NASNetSpace(**SMALL_NASNET)
    train_ds, val_ds = datasets()
    with pytest.raises(ValueError, match=r"rank_by must be one of \('loss', 'accuracy'\)"):
        methods.run("uniform", methods.build_supernet(space), train_ds, val_ds, rank_by="acc")
    with pytest.raises(ValueError, match="rank_by must be one of"):
        kn.oracles.OneShotOracle(space, rank_by="error")


def test_default_training_follows_the_method_and_the_data(monkeypatch):
    # Enough passes for SUPERNET_EXAMPLES examples (here 512: 2 passes over 256), at least
    # MIN_SUPERNET_EPOCHS; Adam at 2e-3, batch 32 for uniform; SGD at 0.05, batch 64 for DARTS.
    monkeypatch.setattr(methods, "SUPERNET_EXAMPLES", 512)
    monkeypatch.setattr(methods, "MIN_SUPERNET_EPOCHS", 1)
    space = kn.spaces.NASNetSpace(**SMALL_NASNET)
    train_ds, val_ds = datasets()
    uniform = methods.run("uniform", methods.build_supernet(space), train_ds, val_ds,
                          num_candidates=2, progress=False)  # fmt: skip
    assert uniform.settings == {"epochs": 2, "batch_size": 32, "optimizer": "adam",
                                "learning_rate": 2e-3}  # fmt: skip
    assert len(uniform.history) == 2
    assert isinstance(uniform.trainer.optimizer, keras.optimizers.Adam)
    monkeypatch.setattr(methods, "MIN_SUPERNET_EPOCHS", 3)
    darts = methods.run("darts", methods.build_supernet(space), train_ds, val_ds,
                        num_candidates=2, progress=False)  # fmt: skip
    assert darts.settings == {"epochs": 3, "batch_size": 64, "optimizer": "sgd",
                              "learning_rate": 0.05}  # fmt: skip
    assert isinstance(darts.trainer.optimizer, keras.optimizers.SGD)
