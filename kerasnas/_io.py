"""Small file helpers shared by the trial store writers."""

from __future__ import annotations

import json
import os
from typing import Any


def write_json(path: str, obj: Any) -> None:
    """Writes JSON through a temporary file and a rename, so no half file is left."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
