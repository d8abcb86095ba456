"""Datasets of your own arrays in an .npz file (`load("npz:PATH")`)."""

from __future__ import annotations

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
        size = _default_validation_fraction() if validation_size is None else validation_size
        splits["train"], splits["val"] = _carve(splits["train"], size, f"npz:{path}")
    return splits["train"], splits["val"], splits["test"]
