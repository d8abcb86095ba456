"""tensorflow-datasets image classification datasets (`load("tfds:NAME")`).

`_tfds_numpy` reads the splits into numpy arrays, `_tfds_datasets` builds
batched `tf.data` pipelines of them; both download and prepare the data first
unless `download=False`. tensorflow-datasets is imported only when used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from kerasnas.data.checks import (
    Splits,
    _carve,
    _default_validation_fraction,
    _validation_count,
    labels_to_indices,
)
from kerasnas.errors import NotDownloadedError

_SHUFFLE_BUFFER = 10_000
#: Where `_network_reachable` checks for a network before tensorflow-datasets downloads
#: (most catalogue datasets are served from Google Cloud Storage), and how long it waits.
PROBE_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT = 3.0
_VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev")


@dataclasses.dataclass
class _TfdsSource:
    """A prepared tensorflow-datasets builder and where its splits come from."""

    name: str
    builder: Any
    image_key: str
    label_key: str
    train: str
    val: str | None
    test: str


def _tfds_source(
    name: str, splits: Sequence[str] | None, data_dir: Any, download: bool
) -> _TfdsSource:
    import tensorflow_datasets as tfds

    what = f"tfds:{name}"
    if not name:
        raise ValueError("'tfds:' needs a dataset name, e.g. load('tfds:cifar10').")
    if splits is not None and (
        isinstance(splits, str)
        or not isinstance(splits, Sequence)
        or len(splits) not in (2, 3)
        or not all(isinstance(s, str) and s for s in splits)
    ):
        raise ValueError(
            "splits must be (train, test) or (train, validation, test) tensorflow-datasets "
            "split names, e.g. ('train', 'test') or ('train[:80%]', 'train[80%:]', 'test'). "
            f"Received: splits={splits!r}."
        )
    try:
        builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    except tfds.core.DatasetNotFoundError:
        close = difflib.get_close_matches(
            name.split(":")[0].split("/")[0], tfds.list_builders(with_community_datasets=False)
        )
        hint = f" Close matches: {', '.join('tfds:' + c for c in close)}." if close else ""
        raise ValueError(
            f"Unknown dataset {what!r}: tensorflow-datasets has no dataset {name!r}.{hint} "
            "See https://www.tensorflow.org/datasets/catalog/overview for the names."
        ) from None
    if download:
        _download_and_prepare(builder, what)
    features = builder.info.features
    items = dict(features.items()) if hasattr(features, "items") else {}
    keys = builder.info.supervised_keys
    image, label = tfds.features.Image, tfds.features.ClassLabel
    if (
        isinstance(keys, tuple)
        and len(keys) == 2
        and all(isinstance(k, str) for k in keys)
        and isinstance(items.get(keys[0]), image)
        and isinstance(items.get(keys[1]), label)
    ):
        image_key, label_key = keys
    else:
        images = [k for k, f in items.items() if isinstance(f, image)]
        labels = [k for k, f in items.items() if isinstance(f, label)]
        if len(images) != 1 or len(labels) != 1:
            kinds = {k: type(f).__name__ for k, f in items.items()} or features
            raise ValueError(
                f"{what} is not an image classification dataset: kerasnas needs one Image "
                f"and one ClassLabel feature, and its features are {kinds}."
            )
        image_key, label_key = images[0], labels[0]

    known = list(builder.info.splits.keys())  # Empty when unknown (not prepared, mocked).
    if splits is None:
        val = next((s for s in _VALIDATION_SPLIT_NAMES if s in known), None)
        if known and ("train" not in known or "test" not in known):
            raise ValueError(
                f"{what} has the splits {known}, not 'train' and 'test'; choose them with "
                f"splits=(train, test) or (train, validation, test), e.g. "
                f"splits=({known[0]!r}, {known[-1]!r})."
            )
        train, test = "train", "test"
    else:
        train, val, test = (splits[0], None, splits[1]) if len(splits) == 2 else tuple(splits)
    for split in (s for s in (train, val, test) if s is not None and known):
        for base in (part.split("[")[0].strip() for part in split.split("+")):
            if base not in known:
                raise ValueError(
                    f"{what} has no split {base!r} (in {split!r}); its splits are {known}."
                )
    return _TfdsSource(name, builder, image_key, label_key, train, val, test)


def _network_reachable(host: tuple[str, int] = PROBE_HOST, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to `host` opens within `timeout` seconds (DNS lookup included).

    The lookup runs in a daemon thread, since `socket.getaddrinfo` takes no timeout.
    """
    result: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(host, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, name="kerasnas-network-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _is_network_error(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) is a failure to reach a server."""
    import urllib.error

    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout
    except ImportError:  # pragma: no cover - tensorflow-datasets requires requests.
        RequestsConnectionError = Timeout = ConnectionError  # noqa: N806
    kinds = (
        RequestsConnectionError, Timeout, urllib.error.URLError, ConnectionError,
        socket.gaierror, TimeoutError,
    )  # fmt: skip
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, kinds):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def _without_retries() -> Iterator[None]:
    """tensorflow-datasets' downloads made once each, without its retries (about 200 s offline)."""
    from tensorflow_datasets.core.download import downloader

    saved = downloader.MAX_RETRIES
    downloader.MAX_RETRIES = 0
    try:
        yield
    finally:
        downloader.MAX_RETRIES = saved


def _download_and_prepare(builder: Any, what: str) -> None:
    """`builder.download_and_prepare()`, failing within seconds when there is no network.

    With a network the download is tensorflow-datasets' own (with its retries).
    Without one (`_network_reachable` fails), preparing is still tried, once and
    without retries, since datasets prepared from local files (manual downloads)
    need no network; a download that fails then raises `NotDownloadedError`
    instead of retrying for minutes, and tensorflow-datasets' progress output
    of the failed attempt is not shown.
    """
    if builder.data_path.exists():
        builder.download_and_prepare()  # Reuses the prepared data.
        return
    online = _network_reachable()
    captured = io.StringIO()
    try:
        if online:
            builder.download_and_prepare()
            return
        with (
            _without_retries(),
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
        ):
            builder.download_and_prepare()
    except Exception as error:
        if not _is_network_error(error):
            raise
        raise NotDownloadedError(_offline_message(builder, what, online, error)) from None
    sys.stdout.write(captured.getvalue())  # Prepared from local files: show what it said.


def _offline_message(builder: Any, what: str, online: bool, error: BaseException) -> str:
    data_dir = os.fspath(builder.data_dir_root)
    said = (str(error).splitlines() or [""])[0][:200]
    reason = (
        f"its download failed ({type(error).__name__}: {said})"
        if online
        else f"there is no network ({PROBE_HOST[0]} cannot be reached)"
    )
    return (
        f"{what} is not downloaded, and {reason}. tensorflow-datasets keeps its data in "
        f"data_dir={data_dir!r} (set by load(..., data_dir=) or $TFDS_DATA_DIR). Fetch it on "
        'a machine with network, e.g. python -c "import tensorflow_datasets as tfds; '
        f"tfds.builder('{builder.name}').download_and_prepare()\", then copy its "
        f"{builder.name}/ folder into that data_dir (or pass data_dir= where it is)."
    )


def _tfds_split(source: _TfdsSource, split: str, resize: tuple[int, int] | None) -> Any:
    """One split as a dataset of (image in its stored dtype, int64 label), unbatched."""
    import tensorflow as tf

    try:
        ds = source.builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as err:  # tfds asserts that the data was prepared.
        raise NotDownloadedError(
            f"tfds:{source.name} is not downloaded (data_dir={source.builder.data_dir!r}); "
            f"pass download=True (the default) or the data_dir that holds it. "
            f"tensorflow-datasets said: {err}"
        ) from None
    spec = ds.element_spec[source.image_key]
    if spec.shape.rank != 3:
        raise ValueError(
            f"tfds:{source.name}: images must have shape (height, width, channels). "
            f"Received {spec.shape}."
        )
    if resize is None and not spec.shape.is_fully_defined():
        raise ValueError(
            f"tfds:{source.name}: images vary in size ({spec.shape}), so they cannot be "
            "batched; pass resize=(height, width)."
        )
    dtype = spec.dtype
    image_key, label_key = source.image_key, source.label_key

    def pick(example: dict[str, Any]) -> tuple[Any, Any]:
        image = example[image_key]
        if resize is not None:
            image = tf.image.resize(image, resize, antialias=True)
            if dtype.is_integer:
                image = tf.clip_by_value(tf.round(image), dtype.min, dtype.max)
            image = tf.cast(image, dtype)
        return image, tf.cast(example[label_key], tf.int64)

    return ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _count(ds: Any) -> int:
    import tensorflow as tf

    count = int(ds.cardinality())
    if count < 0:
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return count


def _normalise(images: Any) -> Any:
    """float32 images in [0, 1] from uint8/uint16 (scaled) or float (kept)."""
    import tensorflow as tf

    if images.dtype in (tf.uint8, tf.uint16):
        return tf.cast(images, tf.float32) / float(images.dtype.max)
    return tf.cast(images, tf.float32)


def _tfds_numpy(
    name: str,
    splits: Sequence[str] | None,
    validation_size: float | None,
    data_dir: Any,
    resize: tuple[int, int] | None,
    download: bool,
) -> Splits:
    source = _tfds_source(name, splits, data_dir, download)
    _check_validation_option(source, validation_size)
    arrays = {}
    for part, split in (("train", source.train), ("val", source.val), ("test", source.test)):
        if split is None:
            continue
        xs, ys = [], []
        for x, y in _tfds_split(source, split, resize).batch(1024).prefetch(2):
            xs.append(_normalise(x).numpy())
            ys.append(y.numpy())
        what = f"tfds:{name} split {split!r}"
        if not xs:
            raise ValueError(f"{what} is empty.")
        arrays[part] = (np.concatenate(xs), labels_to_indices(np.concatenate(ys), what))
    if source.val is None:
        size = _default_validation_fraction() if validation_size is None else validation_size
        arrays["train"], arrays["val"] = _carve(arrays["train"], size, f"tfds:{name}")
    return arrays["train"], arrays["val"], arrays["test"]


def _check_validation_option(source: _TfdsSource, validation_size: float | None) -> None:
    if source.val is not None and validation_size is not None:
        raise ValueError(
            f"tfds:{source.name} reads validation data from split {source.val!r}, so there "
            f"is nothing to carve; do not pass validation_size (received {validation_size!r})."
        )


def _tfds_datasets(
    name: str,
    splits: Sequence[str] | None,
    validation_size: float | None,
    data_dir: Any,
    resize: tuple[int, int] | None,
    download: bool,
    batch_size: int,
    cache: bool | str,
    seed: int | None,
) -> tuple[Any, Any, Any]:
    import tensorflow as tf

    source = _tfds_source(name, splits, data_dir, download)
    _check_validation_option(source, validation_size)
    train = _tfds_split(source, source.train, resize)
    if source.val is None:
        total = _count(train)
        size = _default_validation_fraction() if validation_size is None else validation_size
        keep = total - _validation_count(size, total, f"tfds:{name}")
        train, val = train.take(keep), train.skip(keep)
    else:
        val = _tfds_split(source, source.val, resize)
    test = _tfds_split(source, source.test, resize)
    out = []
    for part, ds in (("train", train), ("val", val), ("test", test)):
        if cache:
            if cache is True:
                ds = ds.cache()
            else:
                os.makedirs(cache, exist_ok=True)
                ds = ds.cache(os.path.join(os.fspath(cache), part))
        if part == "train":
            count = int(ds.cardinality())
            ds = ds.shuffle(
                min(count, _SHUFFLE_BUFFER) if count > 0 else _SHUFFLE_BUFFER, seed=seed
            )
        ds = ds.batch(batch_size).map(
            lambda x, y: (_normalise(x), y), num_parallel_calls=tf.data.AUTOTUNE
        )
        out.append(ds.prefetch(tf.data.AUTOTUNE))
    return tuple(out)
