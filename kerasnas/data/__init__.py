"""Datasets: the embedded default, Fashion-MNIST, tensorflow-datasets, .npz files.

`load(name)` returns `((x_train, y_train), (x_val, y_val), (x_test, y_test))`
as numpy arrays (images float32 in [0, 1], labels int64), or with
`as_numpy=False` three batched `tf.data.Dataset`s of `(images, labels)`.
Names are those of `DATASETS` (`"digits"`, `"fashion_mnist"`) or start with a
prefix of `PREFIXES` (`"tfds:NAME"`, `"npz:PATH"`). `examine(x, y)` checks
training data and reports what a search space needs to know about it
(example shape, class count). See docs/data.md.

The code is organised by source: `embedded` (digits), `idx` (IDX files and
Fashion-MNIST), `tfds` (tensorflow-datasets), `npz` (.npz files), `pipeline`
(numpy splits as `tf.data`) and `checks` (`examine`, label and image checks,
validation carving); this package holds `load`, the registry and the settings,
and re-exports what users call (`examine`, `read_idx`, `to_dataset`, ...).
`load` looks up the loaders it calls in this package, and the loaders read
the settings (`FASHION_MNIST_DIR`, `DEFAULT_VALIDATION_FRACTION`, ...) and the
Fashion-MNIST fallback (`_tfds_numpy`) from here too, so assigning or monkeypatching
`kerasnas.data.NAME` takes effect as it did when this was a single module.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from kerasnas.data.checks import (
    DEFAULT_VALIDATION_FRACTION,
    Splits,
    _is_fraction,
    examine,
)
from kerasnas.data.embedded import _load_digits
from kerasnas.data.idx import (
    FASHION_MNIST_DIR,
    FASHION_MNIST_ENV,
    FASHION_MNIST_FILES,
    FASHION_MNIST_VALIDATION,
    _load_fashion_mnist,
    read_idx,
)
from kerasnas.data.npz import _load_npz
from kerasnas.data.pipeline import _numpy_datasets, _resize_numpy, to_dataset
from kerasnas.data.text import FORTUNES_DIR, _load_text, read_text, vocabulary
from kerasnas.data.tfds import _tfds_datasets, _tfds_numpy

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "DATASETS",
    "DEFAULT_VALIDATION_FRACTION",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_VALIDATION",
    "FORTUNES_DIR",
    "PREFIXES",
    "examine",
    "load",
    "read_idx",
    "read_text",
    "to_dataset",
    "vocabulary",
]


#: Named datasets: `load(name)` calls `DATASETS[name](**options)`.
DATASETS: dict[str, Callable[..., Splits]] = {
    "digits": _load_digits,
    "fashion_mnist": _load_fashion_mnist,
}
#: Prefixed names: `load("tfds:NAME")`, `load("npz:PATH")`.
PREFIXES: dict[str, str] = {
    "tfds": "tfds:NAME, any tensorflow-datasets image classification dataset (tfds:cifar10)",
    "npz": "npz:PATH, an .npz with x_train, y_train, x_test, y_test (and x_val, y_val)",
    "text": "text:PATH, a text file (or folder of them) for character-level language modelling",
}
# Which load() options each kind of dataset takes (beyond as_numpy, batch_size, resize, seed).
_OPTIONS = {
    "digits": (),
    "fashion_mnist": ("validation_size", "data_dir", "download"),
    "npz": ("validation_size",),
    "tfds": ("splits", "validation_size", "data_dir", "download", "cache"),
    "text": ("seq_len",),
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
    seq_len: int | None = None,
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
            `"text:PATH"`: a text file, or a folder of text files (e.g.
            `kerasnas.data.FORTUNES_DIR`, Debian's `fortunes`), for
            character-level language modelling: windows of `seq_len`
            characters as int64 tokens (`x`, shape (N, seq_len)) and the
            same windows shifted by one character (`y`), from contiguous
            90% / 5% / 5% pieces of the text; token i is character
            `kerasnas.data.vocabulary(kerasnas.data.read_text(PATH))[i]`.
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
        seq_len: `"text:"` only: characters per example. Defaults to 64.

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
        "seq_len": seq_len,
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
    elif kind == "text":
        loaded = _load_text(rest.strip(), seq_len=seq_len)
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
