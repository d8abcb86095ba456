"""A search's project folder: its metadata (`kerasnas.json`) and the checks made on resume."""

from __future__ import annotations

import os
from typing import Any

from kerasnas._io import read_json, write_json
from kerasnas.spaces.base import SearchSpace

METADATA = "kerasnas.json"


class Project:
    """The folder `directory/project_name` where a search keeps its trials.

    Args:
        directory: Where projects are stored.
        name: The project's folder name.
    """

    def __init__(self, directory: str, name: str):
        self.directory, self.name = directory, name

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.path, METADATA)

    def exists(self) -> bool:
        """Whether a search has been stored here."""
        return os.path.exists(self.metadata_path)

    def read(self) -> dict[str, Any]:
        """The stored metadata: the space's config, the strategy and the objective's name."""
        return read_json(self.metadata_path)

    def write(self, space: SearchSpace, strategy: str, objective: str) -> None:
        write_json(
            self.metadata_path,
            {"space": space.get_config(), "strategy": strategy, "objective": objective},
            indent=2,
        )

    def check_resume(self, space: SearchSpace) -> dict[str, Any]:
        """Reads the stored metadata and checks that `space` can continue the search.

        A space that does not know its input shape and number of classes yet
        takes them from the stored search.

        Raises:
            ValueError: when the stored search used another space.
        """
        stored = self.read()
        stored_space = stored["space"]
        if not space.is_configured:
            space.configure(stored_space["input_shape"], stored_space["num_classes"])
        if stored_space != space.get_config():
            raise ValueError(
                f"The project {self.path} was searched with another space:\n"
                f"  stored: {stored_space}\n  now:    {space.get_config()}\n"
                "Use the same space to resume, or pass overwrite=True or another "
                "project_name to start afresh."
            )
        return stored
