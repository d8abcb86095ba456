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

from kerasnas.cli.flags import DISTRIBUTIONS, FLAGS, SPACES, parse_objective
from kerasnas.cli.main import (
    PROGRAM,
    UsageError,
    main,
    parse_flags,
    run,
    space_from_flags,
    strategy_kwargs,
)

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
