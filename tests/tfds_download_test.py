"""The real download-and-prepare path of `load("tfds:NAME")`, offline.

tests/datasets_test.py runs tensorflow-datasets under `tfds.testing.mock_data`,
which never calls `download_and_prepare`, so it cannot see what preparing a
dataset needs. Here a tiny builder, registered by name, reads files that the
test writes into tensorflow-datasets' manual download folder
(`<data_dir>/downloads/manual`), and `load` prepares it for real: the
DownloadManager with its checksums lookup (which imports `importlib_resources`,
see setup.py), the extractor, the writer of the TFRecord shards and the reader.
Only the network is left out.
"""

import io
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasnas import data

NAME = "kerasnas_download_test_digits"
N_TRAIN, N_TEST, N_CLASSES = 30, 10, 4


class TinyDigits(tfds.core.GeneratorBasedBuilder):
    """8x8 grey images of 4 classes, read from a .tar.gz in the manual folder."""

    name = NAME
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "tests/tfds_download_test.py writes digits.tar.gz."

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=N_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        # As a downloaded archive would be: extracted by the DownloadManager.
        folder = dl_manager.extract(dl_manager.manual_dir / "digits.tar.gz")
        return {
            "train": self._generate_examples(folder / "train.npz"),
            "test": self._generate_examples(folder / "test.npz"),
        }

    def _generate_examples(self, path):
        with path.open("rb") as f:
            arrays = np.load(io.BytesIO(f.read()))
            images, labels = arrays["x"], arrays["y"]
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield i, {"image": image, "label": int(label)}


def images(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct uint8 images spanning 0..255 (pixel 0 is 0, pixel 1 is 255)."""
    x = (np.arange(n * 64).reshape(n, 8, 8, 1) * 7 + offset) % 256
    x = x.astype(np.uint8)
    x[:, 0, 0, 0], x[:, 0, 1, 0] = 0, 255
    x[:, 7, 7, 0] = np.arange(n) + offset  # Tells the images apart.
    return x, (np.arange(n) % N_CLASSES).astype(np.int64)


def write_manual_files(data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Writes digits.tar.gz (train.npz, test.npz) where the builder reads it."""
    raw = {"train": images(N_TRAIN, 0), "test": images(N_TEST, 100)}
    manual = data_dir / "downloads" / "manual"
    manual.mkdir(parents=True)
    with tarfile.open(manual / "digits.tar.gz", "w:gz") as tar:
        for split, (x, y) in raw.items():
            buffer = io.BytesIO()
            np.savez(buffer, x=x, y=y)
            info = tarfile.TarInfo(f"{split}.npz")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    return raw


def as_set(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """Images (float in [0, 1] or uint8) with their labels, order-free."""
    if x.dtype != np.uint8:
        x = np.round(x * 255).astype(np.uint8)
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(x, y, strict=True))


def test_builder_takes_the_code_path_of_catalogue_datasets(tmp_path):
    # Catalogue builders live in packages (tensorflow_datasets.image_classification.mnist);
    # only then does tensorflow-datasets look up their code path with importlib_resources.
    assert "." in TinyDigits.__module__, TinyDigits.__module__
    assert TinyDigits.code_path is not None
    assert tfds.builder(NAME, data_dir=tmp_path).__class__ is TinyDigits


def test_load_by_name_downloads_and_prepares(tmp_path):
    # Nothing prepared yet, and download=False forbids preparing it.
    with pytest.raises(ValueError, match=f"tfds:{NAME} is not downloaded"):
        data.load(f"tfds:{NAME}", data_dir=tmp_path, download=False)
    raw = write_manual_files(tmp_path)

    (x, y), (xv, yv), (xt, yt) = data.load(f"tfds:{NAME}", data_dir=tmp_path)
    assert (tmp_path / NAME / "1.0.0" / "dataset_info.json").is_file()
    # Train and test, with the default 10% of train carved off for validation.
    assert x.shape == (27, 8, 8, 1) and xv.shape == (3, 8, 8, 1) and xt.shape == (10, 8, 8, 1)
    for images_, labels in ((x, y), (xv, yv), (xt, yt)):
        assert images_.dtype == np.float32 and labels.dtype == np.int64
        assert images_.min() == 0.0 and images_.max() == 1.0
        assert labels.min() >= 0 and labels.max() < N_CLASSES
    # The same images and labels as written, scaled from uint8 to [0, 1].
    assert as_set(np.concatenate([x, xv]), np.concatenate([y, yv])) == as_set(*raw["train"])
    assert as_set(xt, yt) == as_set(*raw["test"])

    # Prepared once: later calls read it, even with download=False, and carve the same
    # validation images (the end of train) on every call.
    (x2, _), (xv2, yv2), _ = data.load(
        f"tfds:{NAME}", data_dir=tmp_path, download=False, validation_size=6
    )
    assert len(x2) == 24 and len(xv2) == 6
    np.testing.assert_array_equal(xv2[-3:], xv)
    np.testing.assert_array_equal(yv2[-3:], yv)

    # tensorflow-datasets' split slicing: (train, validation, test).
    (x3, _), (xv3, _), (xt3, _) = data.load(
        f"tfds:{NAME}", data_dir=tmp_path, splits=("train[:80%]", "train[80%:]", "test")
    )
    assert len(x3) == 24 and len(xv3) == 6 and len(xt3) == 10

    # tf.data pipelines of the same splits, batched, float32 in [0, 1].
    train, val, test = data.load(
        f"tfds:{NAME}", data_dir=tmp_path, as_numpy=False, batch_size=8, validation_size=5
    )
    assert train.element_spec[0].shape.as_list() == [None, 8, 8, 1]
    assert train.element_spec[0].dtype == tf.float32
    assert train.element_spec[1].dtype == tf.int64
    counts = {}
    for part, ds in (("train", train), ("val", val), ("test", test)):
        xs, ys = zip(*((a.numpy(), b.numpy()) for a, b in ds), strict=True)
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        assert xs.min() == 0.0 and xs.max() == 1.0
        counts[part] = len(xs)
        if part == "test":
            assert as_set(xs, ys) == as_set(*raw["test"])
    assert counts == {"train": 25, "val": 5, "test": 10}


# -- Without a network: one clear error within seconds (issue 29, item 3) ----------------
@pytest.fixture
def offline(monkeypatch):
    """No network: the probe fails, and so does every host name lookup (at once)."""
    import socket

    from kerasnas.data import tfds as tfds_module

    def no_lookup(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(tfds_module, "_network_reachable", lambda *a, **k: False)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)


def test_offline_download_fails_fast_with_one_clear_error(tmp_path, offline, capsys):
    from kerasnas.errors import NotDownloadedError

    started = time.perf_counter()
    with pytest.raises(NotDownloadedError) as caught:
        data.load("tfds:mnist", data_dir=tmp_path)
    assert time.perf_counter() - started < 10  # tensorflow-datasets' retries took ~200 s.
    message = str(caught.value)
    assert "\n" not in message and caught.value.__cause__ is None
    assert message.startswith("tfds:mnist is not downloaded, and there is no network")
    assert f"data_dir={str(tmp_path)!r}" in message and "on a machine with network" in message
    assert "tfds.builder('mnist').download_and_prepare()" in message
    out, err = capsys.readouterr()
    assert "Downloading" not in out and "Dl Completed" not in err  # The failed try is quiet.
    # Nothing is lost: a dataset prepared from local files needs no network.
    write_manual_files(tmp_path)
    (x, _), _, (xt, _) = data.load(f"tfds:{NAME}", data_dir=tmp_path)
    assert len(x) + len(xt) == 37


def test_the_network_probe_gives_up_within_its_timeout(monkeypatch):
    import socket

    from kerasnas.data import tfds as tfds_module

    def hang(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(socket, "create_connection", hang)
    started = time.perf_counter()
    assert tfds_module._network_reachable(timeout=0.5) is False
    assert time.perf_counter() - started < 5
    assert tfds_module.PROBE_TIMEOUT == 3.0

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert tfds_module._network_reachable() is False


def test_offline_command_line_exits_with_one_error_line(tmp_path, offline, monkeypatch, capsys):
    from tensorflow_datasets.core import constants

    from tests.cli_faults_test import last_error, run_in_process

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path / "tfds"))
    started = time.perf_counter()
    status, out, err = run_in_process(
        capsys, "--dataset=tfds:mnist", f"--directory={tmp_path}", "--project_name=p"
    )
    assert time.perf_counter() - started < 10
    assert status == 2 and out == "", (status, out)
    line = last_error(err)
    assert err == line + "\n" and "Traceback" not in err, err
    assert "--dataset=tfds:mnist: tfds:mnist is not downloaded" in line
    assert f"data_dir={str(tmp_path / 'tfds')!r}" in line
