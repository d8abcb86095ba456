"""Datasets: the embedded default, Fashion-MNIST, tensorflow-datasets, .npz files.

`load(name)` returns `((x_train, y_train), (x_val, y_val), (x_test, y_test))`
as numpy arrays (images float32 in [0, 1], labels int64), or with
`as_numpy=False` three batched `tf.data.Dataset`s of `(images, labels)`.
Names are those of `DATASETS` (`"digits"`, `"fashion_mnist"`) or start with a
prefix of `PREFIXES` (`"tfds:NAME"`, `"npz:PATH"`). `examine(x, y)` checks
training data and reports what a search space needs to know about it
(example shape, class count). See docs/data.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import math
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

Split = tuple[np.ndarray, np.ndarray]
Splits = tuple[Split, Split, Split]

#: Where Debian's `dataset-fashion-mnist` package installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
#: Environment variable naming another directory of Fashion-MNIST IDX files.
FASHION_MNIST_ENV = "KERASNAS_FASHION_MNIST_DIR"
#: The official Fashion-MNIST file names (each may also end in `.gz`).
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
#: Fashion-MNIST's validation split: the last 10,000 training images.
FASHION_MNIST_VALIDATION = 10_000
#: Share of the training split kept for validation when a dataset has no
#: validation split (`"tfds:"` and `"npz:"` datasets).
DEFAULT_VALIDATION_FRACTION = 0.1
_SHUFFLE_BUFFER = 10_000
_VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev")


# -- Embedded digits --------------------------------------------------------
def _load_digits() -> Splits:
    """scikit-learn's 8x8 digits as (N, 8, 8, 1) float32 images in [0, 1].

    The split is fixed (a seeded permutation): 1077 train, 360 validation and
    360 test images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype("float32") / 16.0)[..., None]
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1077], y[:1077]), (x[1077:1437], y[1077:1437]), (x[1437:], y[1437:])


# -- IDX files and Fashion-MNIST --------------------------------------------
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzipped or not.

    An IDX file starts with the magic number: two zero bytes, a type byte
    (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64) and the number of dimensions; then one big-endian uint32 per
    dimension, then the data, big-endian, in C order. Gzip compression is
    recognised by its magic bytes, whatever the file is called.

    Args:
        path: The file to read.

    Returns:
        The array, in native byte order, of the shape the header gives.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is not a well-formed IDX file (bad magic
            number, unknown type, or a size that does not match the header).
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: the gzip data is corrupt or truncated ({err}).") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        magic = raw[:4].hex() if len(raw) >= 4 else f"only {len(raw)} bytes"
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {magic}. IDX files start "
            "with two zero bytes, a type byte (08 uint8, 09 int8, 0b int16, 0c int32, "
            "0d float32, 0e float64) and the number of dimensions (>= 1), e.g. "
            "00000803 for images and 00000801 for labels."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"the file has {len(raw)}."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: the header gives shape {shape} of {dtype.name}, i.e. "
            f"{count * dtype.itemsize} bytes of data, but the file holds "
            f"{len(raw) - header}; it is truncated or not an IDX file."
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return data.astype(dtype.newbyteorder("=")).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    """The file of `directory` holding `stem`: plain, gzipped, or with '.idx'."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_fashion_mnist_dir(directory: Path) -> dict[str, np.ndarray]:
    """The four official arrays of a Fashion-MNIST directory, checked."""
    found = {key: _find_idx(directory, stem) for key, stem in FASHION_MNIST_FILES.items()}
    missing = [FASHION_MNIST_FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST: {directory} lacks {', '.join(missing)} (plain or .gz). Point "
            f"data_dir= or ${FASHION_MNIST_ENV} at the directory of the four official IDX "
            "files, or leave both unset to use "
            f"{FASHION_MNIST_DIR} (Debian's dataset-fashion-mnist) or tensorflow-datasets."
        )
    arrays = {key: read_idx(path) for key, path in found.items()}
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        x_path, y_path = found[f"x_{part}"], found[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(
                f"Fashion-MNIST: {x_path} must hold uint8 images of shape (N, 28, 28). "
                f"Received {x.dtype.name} of shape {x.shape}."
            )
        if y.dtype != np.uint8 or y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"Fashion-MNIST: {y_path} must hold {len(x)} uint8 labels, one per image "
                f"of {x_path}. Received {y.dtype.name} of shape {y.shape}."
            )
        if len(y) and y.max() > 9:
            raise ValueError(f"Fashion-MNIST: {y_path} holds label {y.max()}; labels are 0-9.")
    return arrays


def _load_fashion_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_size: float | None = None,
    download: bool = True,
) -> Splits:
    """Fashion-MNIST (Xiao et al., 2017) from its IDX files, else tensorflow-datasets.

    The directory is `data_dir`, else `$KERASNAS_FASHION_MNIST_DIR`, else
    `FASHION_MNIST_DIR` (Debian's `dataset-fashion-mnist`). A directory named
    by `data_dir` or the variable must hold the files; only when the default
    one lacks them does this fall back to `tfds:fashion_mnist` (which
    downloads unless `download=False`).
    """
    validation = FASHION_MNIST_VALIDATION if validation_size is None else validation_size
    named = data_dir if data_dir is not None else os.environ.get(FASHION_MNIST_ENV) or None
    directory = Path(named if named is not None else FASHION_MNIST_DIR).expanduser()
    if named is None and any(_find_idx(directory, s) is None for s in FASHION_MNIST_FILES.values()):
        try:
            return _tfds_numpy("fashion_mnist", ("train", "test"), validation, None, None, download)
        except _NotDownloadedError as err:
            raise _NotDownloadedError(
                f"Fashion-MNIST: {directory} lacks the IDX files and {err}"
            ) from None
    arrays = _read_fashion_mnist_dir(directory)
    x_train = _to_float_images(arrays["x_train"][..., None], "Fashion-MNIST")
    x_test = _to_float_images(arrays["x_test"][..., None], "Fashion-MNIST")
    y_train, y_test = arrays["y_train"].astype("int64"), arrays["y_test"].astype("int64")
    train, val = _carve((x_train, y_train), validation, "Fashion-MNIST")
    return train, val, (x_test, y_test)


# -- .npz files --------------------------------------------------------------
_NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def _load_npz(path: str, *, validation_size: float | None = None) -> Splits:
    """Reads `x_train, y_train, x_test, y_test` (and `x_val, y_val`) from an .npz."""
    if not path:
        raise ValueError("'npz:' needs a path, e.g. load('npz:data/my_images.npz').")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"npz:{path}: there is no file {file.resolve()}.")
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"npz:{path} could not be read as an .npz archive: {err}") from None
    if not hasattr(archive, "files"):
        raise ValueError(
            f"npz:{path} holds a single array, not an .npz archive; save one with "
            "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    with archive:
        names = set(archive.files)
        missing = [key for key in _NPZ_REQUIRED if key not in names]
        if missing:
            raise ValueError(
                f"npz:{path} lacks the arrays {missing}; it holds {sorted(names)}. It needs "
                "x_train, y_train, x_test, y_test and optionally x_val, y_val, e.g. "
                "np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)."
            )
        if ("x_val" in names) != ("y_val" in names):
            have, lack = ("x_val", "y_val") if "x_val" in names else ("y_val", "x_val")
            raise ValueError(f"npz:{path} holds {have} but not {lack}; give both or neither.")
        has_val = "x_val" in names
        if has_val and validation_size is not None:
            raise ValueError(
                f"npz:{path} holds x_val and y_val, so there is no validation split to carve; "
                f"do not pass validation_size (received {validation_size!r})."
            )
        parts = ("train", "val", "test") if has_val else ("train", "test")
        splits = {}
        for part in parts:
            what = f"npz:{path} {part} split"
            try:
                x, y = archive[f"x_{part}"], archive[f"y_{part}"]
            except ValueError as err:
                raise ValueError(f"{what}: {err} Save plain numeric arrays.") from None
            x = _to_float_images(_check_images(x, what), what)
            y = labels_to_indices(y, what)
            if len(x) != len(y):
                raise ValueError(f"{what}: x_{part} has {len(x)} examples, y_{part} {len(y)}.")
            splits[part] = (x, y)
    shapes = {part: xs.shape[1:] for part, (xs, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"npz:{path}: the splits' examples differ in shape: {shapes}.")
    if not has_val:
        size = DEFAULT_VALIDATION_FRACTION if validation_size is None else validation_size
        splits["train"], splits["val"] = _carve(splits["train"], size, f"npz:{path}")
    return splits["train"], splits["val"], splits["test"]


def _check_images(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{what}: images must be numeric. Received dtype {x.dtype}.")
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(
            f"{what}: images must be a non-empty array of shape (N, H, W) or (N, H, W, C). "
            f"Received shape {x.shape}."
        )
    return x[..., None] if x.ndim == 3 else x


def _to_float_images(x: np.ndarray, what: str) -> np.ndarray:
    """float32 images: uint8/uint16 scaled to [0, 1] by their largest value, others kept."""
    if x.dtype in (np.uint8, np.uint16):
        return x.astype("float32") / np.float32(np.iinfo(x.dtype).max)
    x = x.astype("float32")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: images hold NaN or infinite values.")
    return x


# -- Validation carving ------------------------------------------------------
def _is_fraction(size: Any) -> bool:
    """Whether `size` is a valid fractional validation_size; raises if it is no valid size."""
    is_int = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
    is_fraction = isinstance(size, (float, np.floating)) and 0 < size < 1
    if not (is_fraction or (is_int and size >= 1)):
        raise ValueError(
            "validation_size must be a float in (0, 1) (a fraction of the training "
            "examples) or an int >= 1 (a count). "
            f"Received: validation_size={size!r}."
        )
    return is_fraction


def _validation_count(size: float, total: int, what: str) -> int:
    """How many of `total` training examples `size` keeps for validation."""
    count = max(1, round(float(size) * total)) if _is_fraction(size) else int(size)
    if count >= total:
        raise ValueError(
            f"{what}: validation_size={size!r} keeps {count} of the {total} training "
            "examples for validation, leaving none to train on; pass a smaller one."
        )
    return count


def _carve(train: Split, size: float, what: str) -> tuple[Split, Split]:
    """Splits the last examples of `train` off as validation data."""
    x, y = train
    keep = len(x) - _validation_count(size, len(x), what)
    return (x[:keep], y[:keep]), (x[keep:], y[keep:])


# -- tensorflow-datasets -----------------------------------------------------
class _NotDownloadedError(ValueError):
    """A tensorflow-datasets dataset that is not prepared in its data_dir."""


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
        raise _NotDownloadedError(
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
        size = DEFAULT_VALIDATION_FRACTION if validation_size is None else validation_size
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
        size = DEFAULT_VALIDATION_FRACTION if validation_size is None else validation_size
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


# -- Numpy splits as tf.data -------------------------------------------------
def _resize_numpy(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    chunks = [
        tf.image.resize(x[i : i + 1024], size, antialias=True).numpy()
        for i in range(0, len(x), 1024)
    ]
    return np.clip(np.concatenate(chunks), 0.0, 1.0).astype("float32")


def to_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False, seed: int | None = 0
) -> Any:
    """A batched, prefetched `tf.data.Dataset` of in-memory arrays.

    The arrays are held once as tensors (so every epoch reads memory, like a
    cache) and batches are gathered by index; with `shuffle`, the order is
    drawn anew each epoch from a sequence fixed by `seed`.
    """
    import tensorflow as tf

    xs, ys = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)))
    return ds.prefetch(tf.data.AUTOTUNE)


def _numpy_datasets(splits: Splits, batch_size: int, seed: int | None) -> tuple[Any, Any, Any]:
    """Batched, prefetched datasets of in-memory splits; train is reshuffled each epoch."""
    return tuple(
        to_dataset(x, y, batch_size, shuffle=i == 0, seed=seed) for i, (x, y) in enumerate(splits)
    )


# -- The registry and load() -------------------------------------------------
#: Named datasets: `load(name)` calls `DATASETS[name](**options)`.
DATASETS: dict[str, Callable[..., Splits]] = {
    "digits": _load_digits,
    "fashion_mnist": _load_fashion_mnist,
}
#: Prefixed names: `load("tfds:NAME")`, `load("npz:PATH")`.
PREFIXES: dict[str, str] = {
    "tfds": "tfds:NAME, any tensorflow-datasets image classification dataset (tfds:cifar10)",
    "npz": "npz:PATH, an .npz with x_train, y_train, x_test, y_test (and x_val, y_val)",
}
# Which load() options each kind of dataset takes (beyond as_numpy, batch_size, resize, seed).
_OPTIONS = {
    "digits": (),
    "fashion_mnist": ("validation_size", "data_dir", "download"),
    "npz": ("validation_size",),
    "tfds": ("splits", "validation_size", "data_dir", "download", "cache"),
}


def load(
    name: str,
    *,
    splits: Sequence[str] | None = None,
    validation_size: float | None = None,
    as_numpy: bool = True,
    batch_size: int = 32,
    resize: tuple[int, int] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    cache: bool | str = True,
    seed: int | None = 0,
) -> Splits | tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """Loads a dataset as `((x_train, y_train), (x_val, y_val), (x_test, y_test))`.

    Images come as float32 in [0, 1] of shape (N, height, width, channels) and
    labels as int64 class indices. With `as_numpy=False` the three splits
    come as batched, prefetched `tf.data.Dataset`s of `(images, labels)`
    instead; pass them to `Search.fit(train, validation_data=val)`.

    When a dataset has no validation split, validation data is the last
    examples of the training split (`validation_size` of them), so the
    split is the same on every call.

    Args:
        name: One of `kerasnas.data.DATASETS` or a prefixed name:
            `"digits"`: scikit-learn's 8x8 digits, embedded, fixed
            1077/360/360 split. `"fashion_mnist"`: Fashion-MNIST, 28x28x1,
            50,000/10,000/10,000 (validation = the last 10,000 training
            images), read from the official IDX files in `data_dir`,
            `$KERASNAS_FASHION_MNIST_DIR` or `FASHION_MNIST_DIR`, else from
            `tfds:fashion_mnist`. `"tfds:NAME"`: any tensorflow-datasets
            image classification dataset, e.g. `"tfds:cifar10"`,
            `"tfds:mnist"`. `"npz:PATH"`: an .npz file holding `x_train,
            y_train, x_test, y_test` and optionally `x_val, y_val`.
        splits: `"tfds:"` only: the tensorflow-datasets splits to read, as
            `(train, test)` (validation is then carved from train) or
            `(train, validation, test)`; slices and sums such as
            `"train[:80%]"` or `"train+validation"` work. Defaults to
            `"train"`, the dataset's `"validation"` split if it has one,
            and `"test"`.
        validation_size: When validation is carved from train: a fraction
            in (0, 1) of the training examples or a count >= 1. Defaults to
            10,000 for `"fashion_mnist"` and 0.1 (10%) for `"tfds:"` and
            `"npz:"`. Not taken by `"digits"` (fixed split) nor by datasets
            that have a validation split.
        as_numpy: Whether to return numpy arrays (default) or
            `tf.data.Dataset`s.
        batch_size: Batch size of the datasets when `as_numpy=False`.
        resize: `(height, width)` to resize every image to (bilinear, with
            antialiasing); needed for datasets whose images vary in size.
        data_dir: For `"tfds:"`, tensorflow-datasets' data directory
            (default: its own, `~/tensorflow_datasets` or `$TFDS_DATA_DIR`);
            for `"fashion_mnist"`, the directory of the IDX files.
        download: Whether tensorflow-datasets may download and prepare the
            data (`"tfds:"`, and `"fashion_mnist"` when it falls back to
            tensorflow-datasets). Defaults to True.
        cache: `"tfds:"` with `as_numpy=False`: True caches the decoded
            images in memory after the first epoch, a path caches them in
            files there, False does not cache.
        seed: Seed of the training data's shuffle (`as_numpy=False`); the
            order changes every epoch but is the same from run to run.
            None: a different order on each run.

    Returns:
        `((x_train, y_train), (x_val, y_val), (x_test, y_test))` numpy
        arrays, or with `as_numpy=False` the datasets `(train, val, test)`.

    Raises:
        ValueError: for an unknown name, an option the dataset does not
            take, or data that does not fit (see the message).
        FileNotFoundError: when a named file or directory lacks the data.
    """
    if not isinstance(name, str):
        raise ValueError(f"The dataset name must be a string. Received: {name!r}.")
    prefix, sep, rest = name.partition(":")
    kind = prefix.strip() if sep and prefix.strip() in PREFIXES else name
    if kind not in DATASETS and kind not in PREFIXES:
        raise ValueError(_unknown_message(name))
    options = {
        "splits": splits,
        "validation_size": validation_size,
        "data_dir": data_dir,
        "download": download,
        "cache": cache,
    }
    defaults = {"download": True, "cache": True}  # The others default to None.
    given = {k: v for k, v in options.items() if v is not defaults.get(k)}
    for option, value in given.items():
        if option not in _OPTIONS.get(kind, ()):
            takers = [
                f"'{k}:'" if k in PREFIXES else repr(k) for k, o in _OPTIONS.items() if option in o
            ]
            raise ValueError(
                f"load({name!r}) does not take {option}= (only {', '.join(takers)} do); "
                f"remove it. Received: {option}={value!r}."
            )
    if validation_size is not None:
        _is_fraction(validation_size)  # Fails early on a bad value.
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}."
        )
    if resize is not None:
        if (
            isinstance(resize, str)
            or not isinstance(resize, Sequence)
            or len(resize) != 2
            or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
                for d in resize
            )
        ):
            raise ValueError(
                f"resize must be (height, width), two integers >= 1. Received: resize={resize!r}."
            )
        resize = (int(resize[0]), int(resize[1]))

    if kind == "tfds":
        name = rest.strip()
        if not as_numpy:
            return _tfds_datasets(
                name, splits, validation_size, data_dir, resize, download, batch_size, cache, seed
            )
        return _tfds_numpy(name, splits, validation_size, data_dir, resize, download)
    if kind == "npz":
        loaded = _load_npz(rest.strip(), validation_size=validation_size)
    else:
        loaded = DATASETS[kind](**given)
    if resize is not None:
        for x, _ in loaded:
            if x.ndim != 4:
                raise ValueError(
                    f"resize needs images of shape (N, height, width, channels); {name!r} "
                    f"has examples of shape {x.shape[1:]}."
                )
        if any(x.shape[1:3] != resize for x, _ in loaded):
            loaded = tuple((_resize_numpy(x, resize), y) for x, y in loaded)
    if as_numpy:
        return loaded
    return _numpy_datasets(loaded, batch_size, seed)


def _unknown_message(name: str) -> str:
    known = sorted(DATASETS)
    message = (
        f"Unknown dataset {name!r}. Known datasets: {known}; or a prefixed name: "
        + "; ".join(PREFIXES.values())
        + "."
    )
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return message + f" Did you mean {close[0]!r}?"
    try:
        import tensorflow_datasets as tfds

        if name in tfds.list_builders(with_community_datasets=False):
            return message + f" Did you mean 'tfds:{name}'?"
    except Exception:  # pragma: no cover - tensorflow-datasets is a requirement.
        pass
    return message


@dataclasses.dataclass
class Examined:
    """What `examine` learnt of a dataset.

    Attributes:
        x: The examples (numpy, float32) or the `tf.data.Dataset`.
        y: Integer labels of shape (N,), or None for a dataset.
        input_shape: Shape of one example.
        num_labels: One more than the largest label seen, or None when the
            labels were not read.
        is_dataset: Whether `x` is a `tf.data.Dataset`.
    """

    x: Any
    y: np.ndarray | None
    input_shape: tuple[int, ...]
    num_labels: int | None
    is_dataset: bool


def examine(
    x: Any, y: Any = None, *, what: str = "training data", read_labels: bool = True
) -> Examined:
    """Checks a dataset and describes it.

    Args:
        x: A numpy array of examples (`y` then holds the labels), or a batched
            `tf.data.Dataset` of `(examples, labels)`.
        y: Integer class labels of shape (N,) or (N, 1), or one-hot labels
            of shape (N, classes).
        what: How error messages name this data.
        read_labels: For a dataset, whether to read it once to find the
            number of classes.

    Raises:
        ValueError: naming what is wrong (empty data, mismatched lengths,
            labels that are not class indices, ...).
    """
    if _is_dataset(x):
        if y is not None:
            raise ValueError(f"{what}: a tf.data.Dataset already holds the labels; do not pass y.")
        return _examine_dataset(x, what, read_labels)
    if x is None:
        raise ValueError(f"{what}: no examples were given (x is None).")
    x = np.asarray(x)
    if y is None:
        raise ValueError(f"{what}: labels are missing; pass y along with x.")
    if x.ndim < 2:
        raise ValueError(
            f"{what}: x must hold one example per row, of shape (N, ...). "
            f"Received: x.shape={x.shape}."
        )
    if len(x) == 0:
        raise ValueError(f"{what} is empty: x has 0 examples.")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{what}: x must be numeric. Received dtype {x.dtype}.")
    y = labels_to_indices(y, what)
    if len(y) != len(x):
        raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)} labels.")
    x = x.astype("float32", copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: x holds NaN or infinite values.")
    return Examined(x, y, tuple(x.shape[1:]), int(y.max()) + 1, False)


def labels_to_indices(y: Any, what: str) -> np.ndarray:
    """Integer class indices of shape (N,) from index or one-hot labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{what}: labels of shape {y.shape} must be one-hot rows; pass "
                "integer class indices of shape (N,) otherwise."
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(
            f"{what}: labels must be class indices of shape (N,) or one-hot of "
            f"shape (N, classes). Received: y.shape={y.shape}."
        )
    if len(y) == 0:
        raise ValueError(f"{what} is empty: y has 0 labels.")
    if not np.issubdtype(y.dtype, np.number) or (
        not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0)
    ):
        raise ValueError(
            f"{what}: labels must be integer class indices 0..num_classes-1. "
            f"Received values such as {y[:5].tolist()}."
        )
    y = y.astype("int64")
    if y.min() < 0:
        raise ValueError(f"{what}: labels must be class indices 0..num_classes-1; found {y.min()}.")
    return y


def check_labels_fit(examined: Examined, num_classes: int, what: str) -> None:
    """Raises ValueError when a label is not below `num_classes`."""
    if examined.num_labels is not None and examined.num_labels > num_classes:
        raise ValueError(
            f"{what}: labels must lie in [0, {num_classes}) for num_classes="
            f"{num_classes}, but label {examined.num_labels - 1} was found. Fix "
            "the labels or pass the right num_classes to the space."
        )


def _is_dataset(x: Any) -> bool:
    if type(x).__module__.startswith("numpy"):
        return False
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TensorFlow is a requirement.
        return False
    return isinstance(x, tf.data.Dataset)


def _examine_dataset(dataset: Any, what: str, read_labels: bool) -> Examined:
    import tensorflow as tf

    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            f"{what}: a tf.data.Dataset must yield (examples, labels) pairs. "
            f"Received elements {spec}."
        )
    x_spec = spec[0]
    if x_spec.shape.rank is None or x_spec.shape.rank < 2:
        raise ValueError(
            f"{what}: the dataset's examples must be batched, of shape (batch, ...). "
            f"Received {x_spec.shape}; call dataset.batch(batch_size)."
        )
    input_shape = tuple(x_spec.shape[1:])
    if any(d is None for d in input_shape):
        raise ValueError(f"{what}: examples must have a fixed shape. Received {x_spec.shape}.")
    num_labels = None
    if read_labels:
        if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                f"{what}: the dataset repeats forever, so its classes cannot be "
                "counted; pass num_classes to the space."
            )
        largest, count = -1, 0
        for batch in dataset:
            labels = labels_to_indices(batch[1].numpy(), what)
            largest, count = max(largest, int(labels.max())), count + len(labels)
        if count == 0:
            raise ValueError(f"{what} is empty: the dataset yields no examples.")
        num_labels = largest + 1
    return Examined(dataset, None, input_shape, num_labels, True)
