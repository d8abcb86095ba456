"""tensorflow-datasets image classification datasets (`load("tfds:NAME")`).

`_tfds_numpy` reads the splits into numpy arrays, `_tfds_datasets` builds
batched `tf.data` pipelines of them; both download and prepare the data first
unless `download=False`. tensorflow-datasets is imported only when used.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Sequence
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
        builder.download_and_prepare()
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
