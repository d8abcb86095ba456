"""A search's project folder: its metadata, its lock, and the checks made on resume.

`kerasnas.json` records what makes the project's trials comparable: the
space (with its input shape and number of classes), the strategy and the
settings of it that change what a trial means, and the objective (name and
direction). A search that resumes the project must agree on all of them.

`kerasnas.lock` is held while a search writes the project: a second search
on the same project fails at once, naming the process that holds it. A lock
left by a process that is gone (killed, or its machine restarted) is taken
over when that process ran on this machine.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from typing import Any

from kerasnas._io import read_json, write_json
from kerasnas.errors import CorruptStoreError, ProjectInUseError
from kerasnas.spaces.base import SearchSpace

METADATA = "kerasnas.json"
LOCK = "kerasnas.lock"
#: How a project that cannot be resumed is started afresh, in the Python API's words
#: (the command line names its flags, `--overwrite` and `--project_name`, instead).
START_AFRESH = "pass overwrite=True (deletes its trials) or another project_name to start afresh"

log = logging.getLogger(__name__)


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

    @property
    def lock_path(self) -> str:
        return os.path.join(self.path, LOCK)

    def exists(self) -> bool:
        """Whether a search has been stored here."""
        return os.path.exists(self.metadata_path)

    def check_directory(self) -> None:
        """Raises ValueError when the project folder cannot be a folder (a file is in the way)."""
        for path, what in ((self.directory, "directory"), (self.path, "project folder")):
            if os.path.exists(path) and not os.path.isdir(path):
                raise ValueError(
                    f"The {what} {path} is a file, not a folder; choose another "
                    f"{'directory' if what == 'directory' else 'project_name'}."
                )

    # -- Metadata ---------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        """The stored metadata (see the module's documentation)."""
        stored = read_json(self.metadata_path)
        if not isinstance(stored, dict) or not isinstance(stored.get("space"), dict):
            raise CorruptStoreError(
                f"The project file {self.metadata_path} does not describe a kerasnas search "
                "(its 'space' is missing). Restore it from a backup, or pass overwrite=True "
                "to start the project afresh."
            )
        return stored

    def write(self, record: dict[str, Any]) -> None:
        write_json(self.metadata_path, record, indent=2)

    def check_resume(self, space: SearchSpace, record: dict[str, Any]) -> dict[str, Any]:
        """Reads the stored metadata and checks that this search can continue it.

        A space that does not know its input shape and number of classes yet
        takes them from the stored search. `record` is what this search would
        store (`Search._record()`); each of its entries that the stored
        metadata also has must agree.

        Raises:
            ValueError: listing what differs, stored and now, and the ways out.
        """
        stored = self.read()
        stored_space = stored["space"]
        if not space.is_configured:
            space.configure(stored_space["input_shape"], stored_space["num_classes"])
        _check_same(self, stored, {**record, "space": space.get_config()})
        return stored

    def check_training(self, training: dict[str, Any]) -> None:
        """Checks that a `fit` trains its trials as the project's earlier trials trained
        (epochs, batch size, recipe: what a score means), and stores it the first time.

        Raises:
            ValueError: listing what differs, stored and now, and the ways out.
        """
        training = json.loads(json.dumps(training))  # As stored: tuples become lists.
        stored = self.read()
        if "training" in stored:
            _check_same(self, {"training": stored["training"]}, {"training": training})
        else:
            self.write({**stored, "training": training})

    def clear(self) -> None:
        """Deletes what the project holds, except its lock (for `overwrite=True`)."""
        if not os.path.isdir(self.path):
            return
        for entry in os.scandir(self.path):
            if entry.name == LOCK:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)

    # -- The lock ---------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the project's lock: raises `ProjectInUseError` if another search holds it."""
        self.check_directory()
        owner = _this_process()
        for _ in range(3):
            try:
                os.makedirs(self.path, exist_ok=True)
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not _is_gone(holder):
                    raise ProjectInUseError(_in_use_message(self, holder)) from None
                log.warning(
                    "taking over the lock of %s, left by a process that is gone (%s)",
                    self.path,
                    _describe(holder) if holder else "unreadable",
                )
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.lock_path)
                continue
            except PermissionError as err:
                raise PermissionError(_not_writable_message(self, err)) from None
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f)
            break
        else:  # pragma: no cover - three processes racing for a stale lock.
            raise ProjectInUseError(f"The lock {self.lock_path} keeps changing hands.")
        try:
            yield
        finally:
            if self._holder() == owner:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.lock_path)

    def _holder(self) -> dict[str, Any] | None:
        try:
            with open(self.lock_path) as f:
                holder = json.load(f)
            return holder if isinstance(holder, dict) else None
        except (OSError, ValueError):
            return None


def _check_same(project: Project, stored: dict[str, Any], record: dict[str, Any]) -> None:
    """Raises ValueError when an entry of `record` differs from the stored one."""
    differ = [k for k in record if k in stored and stored[k] != record[k]]
    if not differ:
        return
    lines = "".join(
        f"\n  {k}: stored {_show(stored[k])}\n  {' ' * len(k)}  now    {_show(record[k])}"
        for k in differ
    )
    raise ValueError(
        f"The project {project.path} was searched with another "
        f"{' and '.join(differ)}, so its trials cannot be compared with this "
        f"search's:{lines}\nUse the same settings to resume it, or {START_AFRESH}."
    )


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value)


def _process_start(pid: int) -> str | None:
    """When a process started (Linux: clock ticks since boot), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _this_process() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "process_start": _process_start(os.getpid()),
        "command": " ".join(sys.argv)[:200],
    }


def _is_gone(holder: dict[str, Any]) -> bool:
    """Whether the process that wrote a lock has ended (only knowable on its own host)."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    recorded = holder.get("process_start")
    return recorded is not None and _process_start(pid) not in (None, recorded)


def _describe(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
        + (f": {holder['command']}" if holder.get("command") else "")
    )


def _not_writable_message(project: Project, err: OSError) -> str:
    where = project.path if os.path.isdir(project.path) else project.directory
    return (
        f"Cannot write in {where} ({err.strerror or err}): a search keeps its trials and "
        f"its lock file {LOCK} in the project folder {project.path}. Make it writable "
        "(e.g. chmod u+w), or pass another directory (or project_name) that can be written."
    )


def _in_use_message(project: Project, holder: dict[str, Any]) -> str:
    return (
        f"The project {project.path} is in use by another search ({_describe(holder)}). "
        "Wait for it to finish, or use another project_name; if that process is gone "
        f"(it ran on another machine), delete {project.lock_path}."
    )
