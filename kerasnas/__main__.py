"""Runs a neural architecture search from the command line.

    python -m kerasnas --dataset=digits --strategy=random --max_trials=10 --epochs=5
    python -m kerasnas --flagfile=examples/flags/digits_random.flags
    python -m kerasnas --show --directory=kerasnas_runs --project_name=search

Every option is a flag (`--helpfull` lists them); see docs/cli.md.
"""

from kerasnas.cli import run

if __name__ == "__main__":
    run()
