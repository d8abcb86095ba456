"""Zero-cost proxies (kerasnas.proxies) on tiny hand-built models and NAS-Bench-201 cells."""

import math
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import kerasnas as kn
from kerasnas.proxies.measures import JACOB_COV_K
from tests import tiny

K = JACOB_COV_K


def digits(n=64):
    (x, y), _ = tiny.digits(train=n, val=1)
    return x, y


def seeded(seed):
    """A Glorot-uniform initializer of its own seed: the tests' random models are fixed."""
    return keras.initializers.GlorotUniform(seed=seed)


def dense_net(width, *, depth=1, inputs=3, classes=2, value=None, softmax=True, cut=False):
    """An MLP; with `value`, every kernel is that constant and biases are 0."""

    def init(i):
        return keras.initializers.Constant(value) if value is not None else seeded(i)

    x = inputs_ = keras.Input((inputs,))
    for i in range(depth):
        x = layers.Dense(width, activation="relu", kernel_initializer=init(i))(x)
    if cut:
        x = layers.Rescaling(0.0)(x)
    activation = "softmax" if softmax else None
    out = layers.Dense(classes, activation=activation, kernel_initializer=init(depth))(x)
    return keras.Model(inputs_, out)


def conv_net(dropout=False):
    """Conv-BN-ReLU twice, pooling and a softmax classifier, for 8x8x1 digits."""
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for i, filters in enumerate((4, 8)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=seeded(i))(
            x
        )
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(0.5, seed=0)(x)
    return keras.Model(
        inputs, layers.Dense(10, activation="softmax", kernel_initializer=seeded(2))(x)
    )


def nb201(arch_string):
    space = kn.spaces.NASBench201Space(
        num_classes=10, input_shape=(8, 8, 1), stem_filters=4, cells_per_stage=1
    )
    return space.build_model(space.from_string(arch_string))


NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONVS = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
POOL = "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


def test_the_proxy_names():
    assert kn.proxies.PROXIES == (
        "synflow",
        "naswot",
        "snip",
        "grad_norm",
        "jacob_cov",
        "zico",
        "meco",
        "params",
        "flops",
    )


def test_zico_by_hand():
    # Softmax regression without bias: the gradient of one example's cross-entropy by the
    # kernel is outer(x, p - onehot(y)); the two mini-batches are the two examples.
    kernel = np.array([[0.5, -1.0], [0.25, 0.75], [-0.5, 0.1]], "float32")
    dense = keras.layers.Dense(2, use_bias=False, activation="softmax")
    model = keras.Sequential([keras.Input((3,)), dense])
    model.layers[-1].kernel.assign(kernel)
    x = np.array([[1.0, 2.0, 0.5], [-1.0, 0.5, 2.0]], "float32")
    y = np.array([0, 1])
    grads = []
    for xi, yi in zip(x.astype(np.float64), y, strict=True):
        logits = xi @ kernel.astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        grads.append(np.outer(xi, p - np.eye(2)[yi]))
    g = np.stack(grads)
    expected = np.log(np.sum(np.abs(g).mean(axis=0) / g.std(axis=0)))
    assert kn.proxies.zico(model, x, y, batch_size=2) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="zico needs at least 2 examples"):
        kn.proxies.zico(model, x[:1], y[:1], batch_size=1)


def test_meco_by_hand():
    # ReLU on a sequence of 4 steps and 2 channels: each example's correlation matrix is
    # [[1, r], [r, 1]], whose smallest eigenvalue is 1 - |r|. The Dense ReLU has no steps:
    # its units correlate over the examples.
    inputs = keras.Input((4, 2))
    x = layers.ReLU()(inputs)
    hidden = layers.Dense(3, activation="relu", kernel_initializer=seeded(0))
    x = hidden(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    x = np.array(
        [
            [[1, 2], [2, 1], [3, 4], [4, 3]],
            [[1, -1], [2, 5], [3, 1], [0, 2]],
            [[1, 3], [2, 3], [3, 3], [4, 3]],  # A constant channel: the eigenvalue is 0.
            [[2, 1], [0, 3], [1, 1], [5, 2]],
        ],
        "float32",
    )
    steps = []
    for example in np.maximum(x, 0).astype(np.float64):
        r = np.corrcoef(example, rowvar=False)[0, 1]
        steps.append(0.0 if np.isnan(r) else 1 - abs(r))
    assert steps[2] == 0.0 and 0 < steps[0] < 1
    units = np.asarray(keras.Model(inputs, hidden.output)(x), np.float64)
    with np.errstate(all="ignore"):
        corr = np.nan_to_num(np.corrcoef(units, rowvar=False))
    expected = np.mean(steps) + np.linalg.eigvalsh(corr)[0]
    assert kn.proxies.meco(model, x, batch_size=4) == pytest.approx(expected, abs=1e-6)


def test_score_is_deterministic_and_leaves_the_model_and_keras_as_they_were():
    x, y = digits(100)
    model = conv_net(dropout=True)
    before = [v.numpy().copy() for v in model.variables]
    name = keras.layers.Dense(1).name
    python_random = random.getstate()
    first = kn.proxies.score(model, x, y, batch_size=32)
    assert set(first) == set(kn.proxies.PROXIES)
    assert all(math.isfinite(v) for v in first.values())
    assert kn.proxies.score(model, x, y, batch_size=32) == first
    assert kn.proxies.score(model, x, y, batch_size=32, seed=1)["naswot"] != first["naswot"]
    # Weights, BatchNorm statistics and dropout seed states are as they were.
    for value, variable in zip(before, model.variables, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())
    assert model.layers[-1].activation is keras.activations.softmax
    assert random.getstate() == python_random
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"
    # No layer or model was named from Keras's counters.
    number = int(name.rpartition("_")[2] or 0) if "_" in name else 0
    assert keras.layers.Dense(1).name == f"dense_{number + 1}"


def test_the_batch_is_a_seeded_draw_kept_in_order():
    x, y = digits(50)
    model = conv_net()
    index = np.sort(np.random.default_rng(3).choice(50, 20, replace=False))
    drawn = kn.proxies.score(model, x, y, proxies=("naswot", "snip"), batch_size=20, seed=3)
    whole = kn.proxies.score(model, x[index], y[index], proxies=("naswot", "snip"), batch_size=20)
    assert drawn == whole


def test_score_agrees_with_each_proxy_function():
    x, y = digits()
    model = conv_net()
    scores = kn.proxies.score(model, x, y)
    assert kn.proxies.synflow(model) == scores["synflow"]
    assert kn.proxies.naswot(model, x) == scores["naswot"]
    assert kn.proxies.snip(model, x, y) == scores["snip"]
    assert kn.proxies.grad_norm(model, x, y) == scores["grad_norm"]
    assert kn.proxies.jacob_cov(model, x) == scores["jacob_cov"]
    assert kn.proxies.params(model) == scores["params"] == model.count_params()
    assert kn.proxies.flops(model) == scores["flops"]


def test_synflow_counts_paths_by_hand_and_wider_is_higher():
    # Kernels of 0.5, zero biases: R = 2 outputs * w * 3 inputs * 0.25 = 1.5 w, and each
    # of the two kernels carries all of R, so synflow = 3 w (the softmax is skipped).
    narrow = kn.proxies.synflow(dense_net(4, value=0.5))
    wide = kn.proxies.synflow(dense_net(16, value=0.5))
    assert narrow == pytest.approx(12.0)
    assert wide == pytest.approx(48.0)
    # With random weights too, more paths give a higher score.
    assert kn.proxies.synflow(dense_net(16)) > kn.proxies.synflow(dense_net(4))


def test_synflow_of_a_cut_network_is_zero_and_the_lowest():
    assert kn.proxies.synflow(dense_net(16, cut=True)) == 0.0
    x, _ = digits(8)
    scores = {s: kn.proxies.synflow(nb201(s), x) for s in (NONE, CONVS, POOL)}
    assert scores[NONE] == 0.0
    assert min(scores[CONVS], scores[POOL]) > 0.0


def test_synflow_computes_in_float64_past_float32s_range():
    # 24 hidden layers of 64 units, all kernels 1: R = 4 * 64**24 * 2 ~ 1.8e44 > 3.4e38,
    # and each of the 25 kernels carries all of R.
    model = dense_net(64, depth=24, inputs=4, value=1.0, softmax=False)
    assert kn.proxies.synflow(model) == pytest.approx(25 * 8 * 64.0**24, rel=1e-9)


def test_synflow_ignores_batch_norm():
    def net(batch_norm):
        inputs = keras.Input((3,))
        x = layers.Dense(5, activation="relu", kernel_initializer="ones")(inputs)
        if batch_norm:
            bn = layers.BatchNormalization()
            x = bn(x)
            bn.set_weights([np.full(5, 3.0), np.full(5, -2.0), np.full(5, 7.0), np.full(5, 0.1)])
        return keras.Model(inputs, layers.Dense(2, kernel_initializer="ones")(x))

    assert kn.proxies.synflow(net(True)) == pytest.approx(kn.proxies.synflow(net(False)))


def test_naswot_of_identical_codes_is_lowest_and_matches_its_definition():
    x, _ = digits()
    model = conv_net()
    varied = kn.proxies.naswot(model, x)
    constant = kn.proxies.naswot(model, np.repeat(x[:1], 64, axis=0))
    assert math.isfinite(varied)
    assert constant == -math.inf
    # By the paper's formula, from the ReLU outputs in training mode.
    relus = [layer.output for layer in model.layers if isinstance(layer, layers.ReLU)]
    outputs = keras.Model(model.inputs[0], relus)(x, training=True)
    codes = np.concatenate([np.asarray(o).reshape(64, -1) > 0 for o in outputs], axis=1)
    codes = codes.astype(np.float64)
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert varied == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


def test_naswot_needs_a_relu():
    x, _ = digits(8)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="ReLU"):
        kn.proxies.naswot(model, x)


def test_snip_and_grad_norm_match_a_hand_computation_on_the_logits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.integers(0, 2, size=16)
    model = dense_net(8)
    # Biases of 1: the proxies leave biases out, and these would count.
    for layer in model.layers[1:]:
        layer.bias.assign(np.ones(layer.bias.shape))
    hidden, last = model.layers[1], model.layers[2]
    with tf.GradientTape() as tape:
        logits = tf.matmul(hidden(x), last.kernel) + last.bias
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )
    kernels = [hidden.kernel, last.kernel]
    grads = [g.numpy() for g in tape.gradient(loss, kernels)]
    snip = sum(np.abs(w.numpy() * g).sum() for w, g in zip(kernels, grads, strict=True))
    norm = sum(np.linalg.norm(g) for g in grads)
    assert kn.proxies.snip(model, x, y) == pytest.approx(snip, rel=1e-5)
    assert kn.proxies.grad_norm(model, x, y) == pytest.approx(norm, rel=1e-5)


def test_jacob_cov_of_a_linear_model_by_hand():
    # Every example's input gradient is the same row: its correlation matrix is all
    # ones, with eigenvalues n and n - 1 zeros.
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model = dense_net(3, depth=0, inputs=4, classes=3, softmax=False)
    expected = -(math.log(5 + K) + 1 / (5 + K) + 4 * (math.log(K) + 1 / K))
    assert kn.proxies.jacob_cov(model, x) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_reads_the_logits_and_is_lowest_without_a_path():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    # The probabilities of a softmax sum to 1 (zero gradient): the logits do not.
    assert math.isfinite(kn.proxies.jacob_cov(dense_net(8), x))
    assert kn.proxies.jacob_cov(dense_net(8, cut=True), x) == -math.inf
    # A final Softmax or Activation("softmax") layer is skipped too.
    logits = dense_net(8, softmax=False)
    expected = kn.proxies.jacob_cov(logits, x)
    for final in (layers.Softmax(), layers.Activation("softmax")):
        model = keras.Model(logits.inputs, final(logits.outputs[0]))
        assert kn.proxies.jacob_cov(model, x) == expected
        assert kn.proxies.synflow(model) == kn.proxies.synflow(logits)


def test_a_nasbench201_cell_without_a_path_scores_lowest():
    x, y = digits(32)
    scores = [kn.proxies.score(nb201(s), x, y) for s in (NONE, CONVS, POOL)]
    assert all(math.isfinite(v) for v in scores[1].values())
    assert scores[0]["synflow"] == 0.0
    assert scores[0]["naswot"] == scores[0]["jacob_cov"] == -math.inf
    combined = kn.proxies.vote(scores)
    assert combined[0] == min(combined) == 1.0


def test_flops_by_hand():
    def count(layer, shape):
        inputs = keras.Input(shape)
        return kn.proxies.flops(keras.Model(inputs, layer(inputs)))

    assert count(layers.Conv2D(4, 3, padding="same"), (8, 8, 2)) == 2 * 8 * 8 * 4 * 3 * 3 * 2
    assert count(layers.Conv2D(4, 3, strides=2), (9, 9, 2)) == 2 * 4 * 4 * 4 * 3 * 3 * 2
    assert count(layers.DepthwiseConv2D(3, padding="same"), (8, 8, 2)) == 2 * 8 * 8 * 2 * 9
    assert count(layers.SeparableConv2D(4, 3, padding="same"), (8, 8, 2)) == 2 * 64 * (18 + 8)
    assert count(layers.Conv1D(6, 3, groups=2), (10, 4)) == 2 * 8 * 6 * 3 * 2
    assert count(layers.Dense(10), (4,)) == 2 * 4 * 10
    assert count(layers.Dense(10), (7, 4)) == 2 * 7 * 4 * 10
    assert count(layers.MaxPooling2D(), (8, 8, 2)) == 0
    # Nested models count too.
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    inputs = keras.Input((6,))
    outer = keras.Model(inputs, layers.Dense(2)(inner(layers.Dense(4)(inputs))))
    assert kn.proxies.flops(outer) == 2 * (6 * 4 + 4 * 3 + 3 * 2)


def test_flops_needs_fixed_shapes():
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="fixed"):
        kn.proxies.flops(model)


def test_vote_averages_ranks_with_ties_and_non_finite_lowest():
    scores = [
        {"synflow": 1.0, "snip": math.nan},
        {"synflow": 2.0, "snip": 5.0},
        {"synflow": 2.0, "snip": 3.0},
        {"synflow": -math.inf, "snip": math.inf},
    ]
    # synflow ranks: -inf 1, 1.0 2, the tie 3.5 each; snip: nan and inf tie lowest (1.5).
    assert kn.proxies.vote(scores, proxies=("synflow", "snip")) == [1.75, 3.75, 3.25, 1.25]
    assert kn.proxies.vote(scores, proxies="synflow") == [2.0, 3.5, 3.5, 1.0]
    assert kn.proxies.vote([]) == []
    with pytest.raises(ValueError, match="jacob_cov"):
        kn.proxies.vote(scores)


def test_sequential_models_work():
    x, y = digits(16)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Flatten(),
            layers.Dense(64, activation="relu", kernel_initializer=seeded(0)),
            layers.Dense(10, activation="softmax", kernel_initializer=seeded(1)),
        ]
    )
    assert all(math.isfinite(v) for v in kn.proxies.score(model, x, y).values())


def test_clear_errors():
    x, y = digits(16)
    model = conv_net()
    with pytest.raises(ValueError, match="Unknown proxy.*'synflow'"):
        kn.proxies.score(model, x, y, proxies=("synflow", "zen"))
    with pytest.raises(ValueError, match="No proxy"):
        kn.proxies.score(model, x, y, proxies=())
    with pytest.raises(ValueError, match="no examples"):
        kn.proxies.score(model, x[:0], y[:0])
    with pytest.raises(ValueError, match=r"shape \(8, 8, 1\).*\(64,\)"):
        kn.proxies.score(model, x.reshape(16, 64), y)
    with pytest.raises(ValueError, match="need labels"):
        kn.proxies.score(model, x)
    with pytest.raises(ValueError, match="10 classes"):
        kn.proxies.score(model, x, y + 10, proxies=("snip",))
    with pytest.raises(ValueError, match="batch_size"):
        kn.proxies.score(model, x, y, batch_size=0)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="functional or Sequential"):
        kn.proxies.score(Subclassed(), x, y)
    # Proxies without labels need no y.
    assert set(kn.proxies.score(model, x, proxies=("naswot", "jacob_cov"))) == {
        "naswot",
        "jacob_cov",
    }


def test_a_sequence_model_of_token_ids_takes_a_label_per_step():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 12, size=(16, 5))
    y = rng.integers(0, 12, size=(16, 5))
    inputs = keras.Input((5,), dtype="int32")
    h = layers.Embedding(12, 4, embeddings_initializer=seeded(0))(inputs)
    h = layers.Dense(16, activation="relu", kernel_initializer=seeded(1))(h)
    model = keras.Model(inputs, layers.Dense(12, activation="softmax")(h))
    scores = kn.proxies.score(model, x, y, proxies=("synflow", "naswot", "snip", "grad_norm"))
    assert all(math.isfinite(v) and v > 0 for v in scores.values())
    with pytest.raises(ValueError, match=r"shape \(16, 5\)"):
        kn.proxies.snip(model, x, y[:, 0])
    with pytest.raises(ValueError, match="not differentiable in its input"):
        kn.proxies.jacob_cov(model, x)


class Apply(layers.Layer):
    """A layer of a Python function: a model of it cannot be copied from its config."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, inputs):
        return self.function(inputs)


def test_synflow_of_a_model_that_cannot_be_copied_is_computed_in_place(caplog):
    def net(scale):
        inputs = keras.Input((3,))
        x = layers.Dense(5, activation="relu", kernel_initializer=seeded(0))(inputs)
        x = scale(x)
        x = layers.BatchNormalization()(x)
        return keras.Model(inputs, layers.Dense(2, kernel_initializer=seeded(1))(x))

    model = net(Apply(lambda t: t * 2.0))
    model.layers[3].moving_mean.assign(np.full(5, 4.0))
    before = [v.numpy().copy() for v in model.variables]
    expected = kn.proxies.synflow(net(layers.Rescaling(2.0)))
    kn.report.logger.addHandler(caplog.handler)
    try:
        assert kn.proxies.synflow(model) == pytest.approx(expected, rel=1e-5)
    finally:
        kn.report.logger.removeHandler(caplog.handler)
    assert "scoring it in float32" in caplog.text
    for value, variable in zip(before, model.variables, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())


# -- Non-finite input and scores (issue 29, item 8) -------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_input_is_refused_by_every_entry_point(bad):
    x, y = digits(16)
    x = x.copy()
    x[3, 2, 2, 0] = bad
    model = conv_net()
    message = r"x holds NaN or infinite values \(in 1 of its 16 examples\).*Clean the data"
    for call in (
        lambda: kn.proxies.score(model, x, y),
        lambda: kn.proxies.naswot(model, x),
        lambda: kn.proxies.snip(model, x, y),
        lambda: kn.proxies.jacob_cov(model, x),
        lambda: kn.proxies.meco(model, x),
        lambda: kn.proxies.synflow(model, x),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_non_finite_score_of_finite_input_is_reported(caplog):
    x = np.ones((8, 3), dtype="float32")
    y = np.arange(8) % 2
    # Kernels of 1e30 overflow float32 in the second layer: the logits are inf.
    model = dense_net(4, depth=2, value=1e30, softmax=False)
    kn.report.logger.addHandler(caplog.handler)
    try:
        scores = kn.proxies.score(model, x, y, proxies=("snip", "grad_norm", "naswot"))
    finally:
        kn.report.logger.removeHandler(caplog.handler)
    assert not math.isfinite(scores["snip"]) and not math.isfinite(scores["grad_norm"])
    assert f"snip of the model {model.name!r} is" in caplog.text
    assert "on finite input" in caplog.text and "vote ranks it lowest" in caplog.text
    # naswot's -inf (identical codes) is its documented lowest score: no warning for it.
    assert scores["naswot"] == -math.inf and "naswot of the model" not in caplog.text
    caplog.clear()
    kn.report.logger.addHandler(caplog.handler)
    try:
        assert math.isfinite(kn.proxies.snip(conv_net(), *digits(16)))
    finally:
        kn.report.logger.removeHandler(caplog.handler)
    assert caplog.text == ""
