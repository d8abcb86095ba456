"""Datasets of your own arrays in an .npz file (`load("npz:PATH")`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from kerasnas.data.checks import (
    Splits,
    _carve,
    _check_images,
    _default_validation_fraction,
    _to_float_images,
    labels_to_indices,
)

_NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")
_SAVE_ONE = "save one with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
# An .npz is a zip file (np.savez); a lone array's .npy file has a magic string of its own.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def _check_archive(path: str, file: Path) -> None:
    """Raises ValueError, saying what the file looks like, unless it starts as a zip or .npy."""
    with open(file, "rb") as f:
        head = f.read(64)
    if head.startswith(_ZIP_MAGIC) or head.startswith(_NPY_MAGIC):
        return
    text = head.decode("utf-8", "ignore")  # A cut multi-byte character is dropped.
    if not head:
        what = "the file is empty"
    elif b"\x00" not in head and all(c.isprintable() or c.isspace() for c in text):
        first = (text.strip().splitlines() or [""])[0]
        what = f"it looks like a text file, starting {first[:30]!r}"
    else:
        what = f"it starts with the bytes {head[:8]!r}"
    raise ValueError(
        f"npz:{path} is not an .npz archive ({what}): an .npz is the zip file that "
        f"np.savez writes; {_SAVE_ONE}"
    )


def _load_npz(path: str, *, validation_size: float | None = None) -> Splits:
    """Reads `x_train, y_train, x_test, y_test` (and `x_val, y_val`) from an .npz."""
    if not path:
        raise ValueError("'npz:' needs a path, e.g. load('npz:data/my_images.npz').")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"npz:{path}: there is no file {file.resolve()}.")
    _check_archive(path, file)
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"npz:{path} is not a readable .npz archive (a damaged zip file: {err}); {_SAVE_ONE}"
        ) from None
    if not hasattr(archive, "files"):
        raise ValueError(f"npz:{path} holds a single array, not an .npz archive; {_SAVE_ONE}")
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
        size = _default_validation_fraction() if validation_size is None else validation_size
        splits["train"], splits["val"] = _carve(splits["train"], size, f"npz:{path}")
    return splits["train"], splits["val"], splits["test"]
