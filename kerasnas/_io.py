"""File helpers for the trial store: atomic writes and reads that name bad files."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from kerasnas.errors import CorruptStoreError

__all__ = ["CorruptStoreError", "read_json", "write_json"]


def write_json(path: str, obj: Any, indent: int | None = None) -> None:
    """Writes JSON through a temporary file and a rename, so no half file is left.

    The temporary file is unique to the process and thread, so processes that
    write the same file (e.g. the replicas of a multi-worker trial) do not
    collide; the last rename wins.
    """
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        # dumps, not dump: dump encodes in Python, dumps in C (10x faster on big states).
        f.write(json.dumps(obj, indent=indent, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    """Reads a JSON file of the store; a corrupt one raises an error naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptStoreError(
            f"The trial store file {path} cannot be read ({e}). Restore it from a backup, "
            "delete it (for a trial.json: the whole trial_* folder) to drop what it held, or "
            "pass overwrite=True to start the project afresh."
        ) from e
