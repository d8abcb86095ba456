"""IDX files (the MNIST format) and Fashion-MNIST read from them (`load("fashion_mnist")`).

The Fashion-MNIST settings (`FASHION_MNIST_DIR`, `FASHION_MNIST_ENV`,
`FASHION_MNIST_FILES`, `FASHION_MNIST_VALIDATION`) and the tensorflow-datasets
fallback (`_tfds_numpy`) are read from the `kerasnas.data` package when a
function runs, so assigning or monkeypatching `kerasnas.data.FASHION_MNIST_DIR`
(say) takes effect as it did when `kerasnas.data` was one module.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from kerasnas.data.checks import Splits, _carve, _to_float_images
from kerasnas.errors import NotDownloadedError

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
    from kerasnas import data as package  # Settings are read where users set them.

    files = package.FASHION_MNIST_FILES
    found = {key: _find_idx(directory, stem) for key, stem in files.items()}
    missing = [files[key] for key, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST: {directory} lacks {', '.join(missing)} (plain or .gz). Point "
            f"data_dir= or ${package.FASHION_MNIST_ENV} at the directory of the four official IDX "
            "files, or leave both unset to use "
            f"{package.FASHION_MNIST_DIR} (Debian's dataset-fashion-mnist) or tensorflow-datasets."
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
    from kerasnas import data as package  # Settings and the fallback, where tests patch them.

    validation = package.FASHION_MNIST_VALIDATION if validation_size is None else validation_size
    named = data_dir if data_dir is not None else os.environ.get(package.FASHION_MNIST_ENV) or None
    directory = Path(named if named is not None else package.FASHION_MNIST_DIR).expanduser()
    stems = package.FASHION_MNIST_FILES.values()
    if named is None and any(_find_idx(directory, s) is None for s in stems):
        try:
            return package._tfds_numpy(
                "fashion_mnist", ("train", "test"), validation, None, None, download
            )
        except NotDownloadedError as err:
            raise NotDownloadedError(
                f"Fashion-MNIST: {directory} lacks the IDX files and {err}"
            ) from None
    arrays = _read_fashion_mnist_dir(directory)
    x_train = _to_float_images(arrays["x_train"][..., None], "Fashion-MNIST")
    x_test = _to_float_images(arrays["x_test"][..., None], "Fashion-MNIST")
    y_train, y_test = arrays["y_train"].astype("int64"), arrays["y_test"].astype("int64")
    train, val = _carve((x_train, y_train), validation, "Fashion-MNIST")
    return train, val, (x_test, y_test)
