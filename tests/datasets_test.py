"""Tests of kerasnas.data.load's datasets: Fashion-MNIST, tensorflow-datasets, .npz files.

No test downloads anything: tensorflow-datasets runs under
`tfds.testing.mock_data`, and the real Fashion-MNIST files are only read when
Debian's `dataset-fashion-mnist` package installed them.
"""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasnas import data
from kerasnas.errors import NotDownloadedError

IDX_TYPES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D}
IDX_TYPES["float64"] = 0x0E


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Writes `array` as an IDX file, gzipped when `compress`."""
    header = bytes([0, 0, IDX_TYPES[array.dtype.name], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def fake_fashion_dir(directory: Path, n_train: int = 12, n_test: int = 5) -> dict:
    """Writes Fashion-MNIST-like IDX files, half of them gzipped; returns the arrays."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for i, (key, stem) in enumerate(data.FASHION_MNIST_FILES.items()):
        compress = i % 2 == 1
        write_idx(directory / (stem + (".gz" if compress else "")), arrays[key], compress)
    return arrays


@pytest.fixture
def no_fashion_dirs(monkeypatch, tmp_path):
    """No Fashion-MNIST files anywhere: load('fashion_mnist') falls back to tfds."""
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)


def collect(dataset):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


# -- IDX ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", sorted(IDX_TYPES))
@pytest.mark.parametrize("name", ["plain", "gzipped.gz", "gzipped_without_suffix"])
def test_read_idx_round_trips(tmp_path, dtype, name):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / name, array, compress=name != "plain")
    got = data.read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)
    labels = write_idx(tmp_path / "labels", np.array([3, 1, 4], dtype=np.uint8))
    assert data.read_idx(labels).tolist() == [3, 1, 4]


def test_read_idx_rejects_malformed_files(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((2, 3), dtype=np.uint8)).read_bytes()
    cases = {
        "magic": (b"\x01\x02" + good[2:], "not an IDX file: its magic number is 0102"),
        "type": (good[:2] + b"\x07" + good[3:], "type byte"),
        "short": (b"\x00\x00", "only 2 bytes"),
        "header": (good[:6], "truncated IDX header"),
        "data": (good[:-1], r"shape \(2, 3\) of uint8, i.e. 6 bytes .* holds 5"),
        "gzip": (gzip.compress(good)[:-6], "gzip data is corrupt"),
    }
    for name, (raw, message) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError, match=message):
            data.read_idx(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "absent")


# -- Fashion-MNIST --------------------------------------------------------------
def test_fashion_mnist_from_idx_files(tmp_path, monkeypatch):
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    raw = fake_fashion_dir(tmp_path / "fm")
    (x, y), (xv, yv), (xt, yt) = data.load(
        "fashion_mnist", data_dir=tmp_path / "fm", validation_size=4
    )
    assert x.shape == (8, 28, 28, 1) and xv.shape == (4, 28, 28, 1) and xt.shape == (5, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and yt.dtype == np.int64
    # Validation is the last training images; pixels are scaled by 255.
    np.testing.assert_allclose(xv[..., 0], raw["x_train"][8:] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(x[..., 0], raw["x_train"][:8] / 255.0, rtol=1e-6)
    assert yv.tolist() == raw["y_train"][8:].tolist() and yt.tolist() == raw["y_test"].tolist()
    # The environment variable names the directory too.
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "fm"))
    (x2, _), (xv2, _), _ = data.load("fashion_mnist", validation_size=0.25)
    assert len(x2) == 9 and len(xv2) == 3
    # The default validation split (10,000 images) does not fit 12 images.
    with pytest.raises(ValueError, match="keeps 10000 of the 12 training examples"):
        data.load("fashion_mnist")


def test_fashion_mnist_bad_directories(tmp_path, monkeypatch):
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    fake_fashion_dir(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        data.load("fashion_mnist", data_dir=tmp_path / "fm")
    # A named directory never falls back to tensorflow-datasets.
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="KERASNAS_FASHION_MNIST_DIR"):
        data.load("fashion_mnist")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="must hold 5 uint8 labels"):
        data.load("fashion_mnist", data_dir=tmp_path / "fm", validation_size=2)


def test_fashion_mnist_as_datasets(tmp_path):
    raw = fake_fashion_dir(tmp_path / "fm", n_train=20)
    train, val, test = data.load(
        "fashion_mnist", data_dir=tmp_path / "fm", validation_size=5, as_numpy=False, batch_size=4
    )
    assert train.element_spec[0].shape.as_list() == [None, 28, 28, 1]
    assert train.element_spec[1].dtype == tf.int64
    x1, y1 = collect(train)
    x2, _ = collect(train)
    assert len(x1) == 15 and not np.array_equal(x1, x2)  # Reshuffled each epoch.
    # Train holds the first 15 images, each once.
    flat = np.round(x1[..., 0] * 255).astype(np.uint8).reshape(15, -1)
    expected = raw["x_train"][:15].reshape(15, -1)
    assert sorted(map(bytes, flat)) == sorted(map(bytes, expected))
    xv, yv = collect(val)  # Validation and test keep their order.
    np.testing.assert_allclose(xv[..., 0], raw["x_train"][15:] / 255.0, rtol=1e-6)
    assert collect(test)[1].tolist() == raw["y_test"].tolist()
    assert data.examine(train).num_labels == 10


SYSTEM_FILES = [
    os.path.join(data.FASHION_MNIST_DIR, f"{stem}.gz") for stem in data.FASHION_MNIST_FILES.values()
]


@pytest.mark.skipif(
    not all(os.path.isfile(path) for path in SYSTEM_FILES),
    reason=f"Fashion-MNIST IDX files not installed in {data.FASHION_MNIST_DIR} "
    "(apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    raw = {
        key: data.read_idx(path)
        for key, path in zip(data.FASHION_MNIST_FILES, SYSTEM_FILES, strict=True)
    }
    assert raw["x_train"].shape == (60_000, 28, 28) and raw["y_train"].shape == (60_000,)
    assert raw["x_test"].shape == (10_000, 28, 28) and raw["y_test"].shape == (10_000,)
    (x, y), (xv, yv), (xt, yt) = data.load("fashion_mnist")
    assert x.shape == (50_000, 28, 28, 1) and xv.shape == (10_000, 28, 28, 1)
    assert xt.shape == (10_000, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and 0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(yv, raw["y_train"][50_000:])
    np.testing.assert_array_equal(
        (xv[..., 0] * 255).round().astype(np.uint8), raw["x_train"][50_000:]
    )
    assert np.bincount(yt).tolist() == [1000] * 10  # The test set is balanced.
    assert np.bincount(np.concatenate([y, yv])).tolist() == [6000] * 10


def test_fashion_mnist_falls_back_to_tfds(no_fashion_dirs, monkeypatch):
    with tfds.testing.mock_data(num_examples=20):
        (x, y), (xv, yv), (xt, yt) = data.load("fashion_mnist", validation_size=5)
    assert x.shape == (15, 28, 28, 1) and xv.shape == (5, 28, 28, 1) and xt.shape == (20, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and 0 <= x.min() and x.max() <= 1
    # By default the fallback also keeps the last 10,000 training images for validation.
    calls = []
    monkeypatch.setattr(data, "_tfds_numpy", lambda *args: calls.append(args) or "loaded")
    assert data._load_fashion_mnist() == "loaded"
    assert calls == [("fashion_mnist", ("train", "test"), 10_000, None, None, True)]


# -- tensorflow-datasets --------------------------------------------------------
def test_tfds_as_numpy_carves_validation():
    with tfds.testing.mock_data(num_examples=20):
        (x, y), (xv, yv), (xt, yt) = data.load("tfds:cifar10")
        assert x.shape == (18, 32, 32, 3) and xv.shape == (2, 32, 32, 3)
        assert xt.shape == (20, 32, 32, 3)
        assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
        assert y.dtype == np.int64 and 0 <= y.min() and y.max() < 10
        # The split is the same on every call: validation is the end of train.
        (x2, _), (xv2, yv2), _ = data.load("tfds:cifar10", validation_size=5)
        np.testing.assert_array_equal(x2, x[:15])
        np.testing.assert_array_equal(xv2[-2:], xv)
        assert len(x2) == 15 and len(xv2) == 5
        # Three splits: nothing is carved.
        (x3, _), (xv3, _), _ = data.load("tfds:mnist", splits=("train", "test", "test"))
        assert x3.shape == (20, 28, 28, 1) and xv3.shape == (20, 28, 28, 1)
        with pytest.raises(ValueError, match="nothing to carve"):
            data.load("tfds:mnist", splits=("train", "test", "test"), validation_size=3)
        with pytest.raises(ValueError, match="leaving none to train on"):
            data.load("tfds:mnist", validation_size=20)
        with pytest.raises(ValueError, match=r"validation_size must be .* Received: .*1.5"):
            data.load("tfds:mnist", validation_size=1.5)
        with pytest.raises(ValueError, match=r"splits must be \(train, test\)"):
            data.load("tfds:mnist", splits="train")


def test_tfds_as_datasets():
    with tfds.testing.mock_data(num_examples=20):
        train, val, test = data.load(
            "tfds:mnist", as_numpy=False, batch_size=8, resize=(14, 14), validation_size=4
        )
        (_, _), (xv_numpy, yv_numpy), _ = data.load("tfds:mnist", validation_size=4)
    assert train.element_spec[0].shape.as_list() == [None, 14, 14, 1]
    assert train.element_spec[0].dtype == tf.float32 and train.element_spec[1].dtype == tf.int64
    x1, y1 = collect(train)
    x2, y2 = collect(train)
    assert len(y1) == 16 and sorted(y1.tolist()) == sorted(y2.tolist())
    assert 0 <= x1.min() and x1.max() <= 1
    xv, yv = collect(val)
    assert xv.shape == (4, 14, 14, 1) and yv.tolist() == yv_numpy.tolist()
    assert collect(test)[0].shape == (20, 14, 14, 1)
    batches = [len(b[1]) for b in train]
    assert batches == [8, 8]
    got = data.examine(train)  # What Search.fit checks.
    assert got.is_dataset and got.input_shape == (14, 14, 1) and got.num_labels <= 10


def test_tfds_file_cache_and_resizing_variable_images(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        with pytest.raises(ValueError, match="images vary in size.*resize=\\(height, width\\)"):
            data.load("tfds:imagenette", splits=("train", "validation"))
        train, val, _ = data.load(
            "tfds:imagenette",
            splits=("train", "validation"),
            resize=(8, 8),
            as_numpy=False,
            cache=str(tmp_path / "cache"),
            validation_size=2,
        )
        assert collect(train)[0].shape == (4, 8, 8, 3) and collect(val)[0].shape == (2, 8, 8, 3)
    assert any(name.startswith("train") for name in os.listdir(tmp_path / "cache"))


def test_tfds_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'tfds:cifar11'.*tfds:cifar10"):
        data.load("tfds:cifar11")
    with pytest.raises(ValueError, match="'tfds:' needs a dataset name"):
        data.load("tfds:")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match="not an image classification dataset.*'text'"):
            data.load("tfds:imdb_reviews")
    # Offline and not prepared: a clear error instead of tfds's assertion.
    with pytest.raises(NotDownloadedError, match="tfds:mnist is not downloaded.*download=True"):
        data.load("tfds:mnist", data_dir=tmp_path, download=False)


# -- .npz -----------------------------------------------------------------------
def test_npz_carves_validation_and_scales(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)  # No channel axis.
    y = np.arange(20) % 3
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=np.eye(3)[y[:4]])
    (xt, yt), (xv, yv), (xs, ys) = data.load(f"npz:{tmp_path / 'd.npz'}")
    assert xt.shape == (18, 6, 6, 1) and xv.shape == (2, 6, 6, 1) and xs.shape == (4, 6, 6, 1)
    np.testing.assert_allclose(xv[..., 0], x[18:] / 255.0, rtol=1e-6)
    assert ys.tolist() == y[:4].tolist() and yt.dtype == np.int64 and xt.dtype == np.float32
    (xt, _), (xv, _), _ = data.load(f"npz:{tmp_path / 'd.npz'}", validation_size=5)
    assert len(xt) == 15 and len(xv) == 5
    # Given validation arrays are used as they are; float images are not rescaled.
    xf = rng.random((5, 4, 4, 2)).astype("float64") * 3
    np.savez(tmp_path / "v.npz", x_train=xf, y_train=[0, 1, 0, 1, 0], x_val=xf[:2], y_val=[1, 1],
             x_test=xf[:1], y_test=[0])  # fmt: skip
    (xt, _), (xv, yv), _ = data.load(f"npz:{tmp_path / 'v.npz'}")
    assert len(xt) == 5 and yv.tolist() == [1, 1]
    np.testing.assert_allclose(xv, xf[:2].astype("float32"))
    with pytest.raises(ValueError, match="holds x_val and y_val.*do not pass validation_size"):
        data.load(f"npz:{tmp_path / 'v.npz'}", validation_size=0.2)
    train, _, _ = data.load(f"npz:{tmp_path / 'v.npz'}", as_numpy=False, batch_size=2)
    assert [len(b[1]) for b in train] == [2, 2, 1]


def test_npz_errors(tmp_path):
    x, y = np.zeros((4, 3, 3, 1), "uint8"), np.array([0, 1, 0, 1])
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x)
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]; it holds"):
        data.load(f"npz:{path}")
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, x_val=x)
    with pytest.raises(ValueError, match="holds x_val but not y_val"):
        data.load(f"npz:{path}")
    np.savez(path, x_train=x, y_train=y[:3], x_test=x, y_test=y)
    with pytest.raises(ValueError, match="x_train has 4 examples, y_train 3"):
        data.load(f"npz:{path}")
    np.savez(path, x_train=x, y_train=y, x_test=np.zeros((4, 5, 5, 1)), y_test=y)
    with pytest.raises(ValueError, match="differ in shape"):
        data.load(f"npz:{path}")
    np.savez(path, x_train=np.zeros((4, 9)), y_train=y, x_test=x, y_test=y)
    with pytest.raises(ValueError, match=r"shape \(N, H, W\) or \(N, H, W, C\)"):
        data.load(f"npz:{path}")
    np.save(tmp_path / "single.npy", x)
    with pytest.raises(ValueError, match="single array"):
        data.load(f"npz:{tmp_path / 'single.npy'}")
    with pytest.raises(FileNotFoundError, match="there is no file"):
        data.load(f"npz:{tmp_path / 'absent.npz'}")
    with pytest.raises(ValueError, match="needs a path"):
        data.load("npz:")


# -- Registry and options -------------------------------------------------------
def test_registry_and_unknown_names():
    assert {"digits", "fashion_mnist"} <= set(data.DATASETS)
    assert {"tfds", "npz"} <= set(data.PREFIXES)
    with pytest.raises(ValueError, match="Unknown dataset 'cifar11'.*digits.*fashion_mnist.*tfds:"):
        data.load("cifar11")
    with pytest.raises(ValueError, match="Did you mean 'tfds:cifar10'"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="Did you mean 'digits'"):
        data.load("digit")


def test_options_are_checked():
    with pytest.raises(ValueError, match=r"load\('digits'\) does not take validation_size="):
        data.load("digits", validation_size=10)
    with pytest.raises(ValueError, match="does not take splits=.*only 'tfds:'"):
        data.load("fashion_mnist", splits=("train", "test"))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        data.load("digits", batch_size=0)
    with pytest.raises(ValueError, match=r"resize must be \(height, width\)"):
        data.load("digits", resize=(8,))


def test_digits_options():
    (x, y), (xv, _), _ = data.load("digits", resize=(16, 16))
    assert x.shape == (1077, 16, 16, 1) and 0 <= x.min() and x.max() <= 1
    train, val, test = data.load("digits", as_numpy=False, batch_size=64)
    (x0, y0), (xv0, yv0), _ = data.load("digits")
    xs, ys = collect(val)
    np.testing.assert_array_equal(xs, xv0)
    assert sorted(collect(train)[1].tolist()) == sorted(y0.tolist())
    assert data.examine(test).input_shape == (8, 8, 1)
