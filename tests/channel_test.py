"""Tests of the Channel-Bench-Macro spaces and tables."""

import os

import keras
import numpy as np
import pytest

import kerasnas as kn
from kerasnas.benchmarks.tabular import channel_table_path
from kerasnas.spaces.channel import CHANNEL_MAX

ROOT = os.path.dirname(os.path.dirname(__file__))
TABLES = {block: channel_table_path(block, ROOT) for block in CHANNEL_MAX}
# The README's figures: best mean (percent) and its key, worst, mean of all.
README = {
    "resnet": ("4344424", 93.893, 91.573, 93.103),
    "mobilenet": ("4444342", 91.887, 89.167, 90.818),
}


def table(block):
    if TABLES[block] is None:
        pytest.skip(f"../shared/data/channel-bench-macro_{block}_cifar10.json is absent")
    return kn.benchmarks.load_channel(TABLES[block], block)


def macs(model):
    """Multiply-accumulates of the convolutions and the classifier, as the tables count flops."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D):
            height, width = layer.output.shape[1:3]
            total += int(np.prod(layer.kernel.shape)) * height * width
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def test_keys_decisions_and_config():
    space = kn.spaces.ChannelSpace("mobilenet")
    assert [d.name for d in space.decisions] == [f"layer_{i}" for i in range(7)]
    assert all(d.choices == (0.25, 0.5, 0.75, 1.0) for d in space.decisions)
    assert space.cardinality() == 4**7
    arch = space.from_key("4444342")
    assert space.key(space.encode(arch)) == "4444342"
    assert arch.choices["layer_4"] == 0.75 and arch.choices["layer_6"] == 0.5
    assert space.channels(arch) == (128, 768, 768, 768, 192, 1536, 512)
    assert space.get_config()["block"] == "mobilenet" and space.name == "channel_mobilenet"
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        assert space.from_key(space.key(space.encode(arch))) == arch
        assert kn.Architecture.from_json(arch.to_json()).hash() == arch.hash()
    for bad in ("444434", "4444340", "44443425"):
        with pytest.raises(kn.OutOfSpaceError, match="7 digits among 1, 2, 3, 4"):
            space.from_key(bad)
    with pytest.raises(ValueError, match="block must be one of"):
        kn.spaces.ChannelSpace("vgg")
    with pytest.raises(ValueError, match="7 positive channel counts"):
        kn.spaces.ChannelSpace(max_channels=(8, 8))


@pytest.mark.parametrize("block", ["resnet", "mobilenet"])
def test_small_models_build_train_and_export(block, tmp_path):
    space = kn.spaces.ChannelSpace(
        block, num_classes=10, input_shape=(8, 8, 3), max_channels=(8, 8, 8, 16, 16, 16, 16)
    )
    arch = space.from_key("1234123")
    model = space.build(arch)
    assert model.name == f"channel_{block}_1234123"
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype="float32")
    assert model(x, training=False).shape == (4, 10)
    model.fit(x, np.arange(4), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path)(x, training=False), model(x, training=False), atol=1e-5
    )
    # Wider layers make bigger models.
    assert space.build(space.from_key("4444444")).count_params() > model.count_params()


@pytest.mark.parametrize("block", ["resnet", "mobilenet"])
def test_full_models_match_the_tables_params_and_flops(block):
    bench = table(block)
    space = kn.spaces.ChannelSpace(block, num_classes=10, input_shape=(32, 32, 3))
    for key in ("1111111", "4444444", "1234123", README[block][0]):
        model = space.build(space.from_key(key))
        record = bench.lookup(space.from_key(key))
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == record["params"], key
        assert macs(model) == record["flops"], key


@pytest.mark.parametrize("block", ["resnet", "mobilenet"])
def test_channel_tables_load_with_fractions(block):
    bench = table(block)
    best_key, best, worst, mean = README[block]
    assert len(bench) == 16384
    assert set(bench.metric_names) == {"val_accuracy", "test_accuracy", "params", "flops"}
    assert isinstance(bench.space, kn.spaces.ChannelSpace) and bench.space.block == block
    assert bench.best("test_accuracy") == (best_key, pytest.approx(best / 100, abs=1e-5))
    assert bench.best("test_accuracy", "min")[1] == pytest.approx(worst / 100, abs=1e-5)
    means = [r["test_accuracy"] for r in bench.table.values()]
    assert np.mean(means) == pytest.approx(mean / 100, abs=1e-5)
    record = bench.lookup(bench.space.from_key(best_key))
    assert isinstance(record["val_accuracy"], tuple) and len(record["val_accuracy"]) == 3
    assert np.mean(record["val_accuracy"]) == pytest.approx(record["test_accuracy"], abs=1e-6)
    # Every key of the table is an architecture of the space.
    assert {bench.space.key(bench.space.encode(a)) for a in bench.space.enumerate()} == set(
        bench.table
    )
    # A single seed as the search signal.
    seed0 = kn.benchmarks.load_channel(TABLES[block], block, search_metric="acc[0]")
    values = bench.space.encode(bench.space.from_key(best_key))
    assert seed0.evaluate(values)["val_accuracy"] == record["val_accuracy"][0]


def test_loader_arguments_and_paths(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="block must be 'resnet' or 'mobilenet'"):
        kn.benchmarks.load_channel(block="vgg")
    with pytest.raises(ValueError, match="ChannelSpace of block 'resnet'"):
        kn.benchmarks.load_channel(block="resnet", space=kn.spaces.ChannelSpace("mobilenet"))
    with pytest.raises(FileNotFoundError, match="Channel-Bench-Macro mobilenet table"):
        kn.benchmarks.load_channel(tmp_path / "missing.json", "mobilenet")
    # $KERASNAS_SHARED_DATA comes first; shared_table_paths lists what is found.
    (tmp_path / "channel-bench-macro_mobilenet_cifar10.json").write_text("{}")
    monkeypatch.setenv("KERASNAS_SHARED_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert channel_table_path("mobilenet") == str(
        tmp_path / "channel-bench-macro_mobilenet_cifar10.json"
    )
    found = kn.benchmarks.shared_table_paths(tmp_path)
    assert found["channel_mobilenet"].startswith(str(tmp_path))
    assert list(found) == [n for n in kn.benchmarks.SHARED_TABLES if n in found]


@pytest.mark.parametrize("block", ["resnet", "mobilenet"])
def test_a_tabular_search_of_the_channel_space(block, tmp_path):
    bench = table(block)
    search = kn.Search(
        bench.space,
        strategy="evolution",
        max_trials=20,
        seed=0,
        evaluator=bench,
        directory=str(tmp_path),
        verbose=0,
    )
    search.fit()
    results = search.results()
    assert len(results) == 20 and len({r["hash"] for r in results}) == 20
    assert all(0.89 < r["metrics"]["test_accuracy"] < 0.94 for r in results)


def test_a_resource_objective_on_the_mobilenet_table(tmp_path):
    bench = table("mobilenet")
    objective = kn.objectives.resource_constrained("val_accuracy", resource="flops", target=60e6)
    search = kn.Search(
        bench.space,
        "evolution",
        objective=objective,
        evaluator=bench,
        max_trials=15,
        seed=0,
        directory=str(tmp_path),
        verbose=0,
    )
    search.fit()
    for r in search.results():
        m = r["metrics"]
        assert m["val_accuracy_x_flops"] == pytest.approx(objective.compute(m))
