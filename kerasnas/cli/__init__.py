"""Batch architecture searches from the command line: `python -m kerasnas`.

    python -m kerasnas --dataset=digits --strategy=evolution --max_trials=50 \\
        --epochs=5 --directory=runs --project_name=digits_evolution
    python -m kerasnas --flagfile=examples/flags/digits_random.flags
    python -m kerasnas --show --directory=runs --project_name=digits_evolution

A run loads the dataset (`kerasnas.data.load`), builds the space and the
strategy from the flags, prints one line per trial and a table of the best
trials, exports the best model (`--export`) and prints its path last. Running
the same command again resumes the project; `--overwrite` starts afresh.
`--show` prints the table of a stored project and runs nothing.

Exit status: 0 on success (and after `--help`/`--helpfull`), 1 when the search
itself fails, 2 for a bad flag value (one line on stderr, `kerasnas: error:
...`, written before anything is trained or written), 130 when interrupted.
See docs/cli.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# The names below load lazily (PEP 562): the spaces and strategies import
# `kerasnas.cli.registry` for their `cli_flags` declarations, and the flags
# module imports the registries, so this package imports nothing when it loads.
# Import them from here (`from kerasnas.cli import main`), not from their modules.
_HOMES = {
    "DISTRIBUTIONS": "kerasnas.cli.flags",
    "FLAGS": "kerasnas.cli.flags",
    "SPACES": "kerasnas.cli.flags",
    "parse_objective": "kerasnas.cli.flags",
    "PROGRAM": "kerasnas.cli.main",
    "UsageError": "kerasnas.cli.main",
    "main": "kerasnas.cli.main",
    "parse_flags": "kerasnas.cli.main",
    "run": "kerasnas.cli.main",
    "space_from_flags": "kerasnas.cli.main",
    "strategy_kwargs": "kerasnas.cli.main",
}
_SUBMODULES = ("flags", "registry")


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        # Binds every name of that module at once: importing kerasnas.cli.main makes
        # `main` here the submodule, which the function `main` then replaces.
        home = importlib.import_module(_HOMES[name])
        globals().update({n: getattr(home, n) for n, m in _HOMES.items() if m == home.__name__})
        return globals()[name]
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES, *_SUBMODULES])


__all__ = [
    "DISTRIBUTIONS",
    "FLAGS",
    "PROGRAM",
    "SPACES",
    "UsageError",
    "main",
    "parse_flags",
    "parse_objective",
    "run",
    "space_from_flags",
    "strategy_kwargs",
]
