"""Resident memory over many consecutive trials in one process.

Usage: python benchmarks/memory_soak.py [--trials=50] [--epochs=1] [--keep-graphs]

Runs a random search of small NASNet-space trials on digits and prints the
process's resident set size (RSS) at the end of every trial's training (the
trial's model is still alive then). The last line is `rss_growth=<fraction>`:
the growth from the third trial to the last (target: at most 0.10).

`--keep-graphs` turns off the tuner's release of each finished trial's traced
graphs (`kerasnas.training.evaluators.release_graphs`, see `kerasnas/_memory.py`), to
measure the leak it prevents.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import psutil  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.training import evaluators  # noqa: E402


class RecordRSS(keras.callbacks.Callback):
    """Prints and records the process's RSS in MiB when a trial's training ends."""

    rss: list[float] = []

    def on_train_end(self, logs: dict | None = None) -> None:
        RecordRSS.rss.append(psutil.Process().memory_info().rss / 2**20)
        print(f"trial {len(RecordRSS.rss)} rss={RecordRSS.rss[-1]:.1f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--keep-graphs",
        action="store_true",
        help="do not release finished trials' graphs (shows the leak)",
    )
    args = parser.parse_args()
    if args.keep_graphs:
        evaluators.release_graphs = lambda before: None
    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(num_blocks=3, num_cells=1, num_reductions=1, filters=16)
    with tempfile.TemporaryDirectory() as tmp:
        search = kn.Search(space, max_trials=args.trials, seed=0, directory=tmp, verbose=0)
        search.fit(x, y, validation_data=(xv, yv), epochs=args.epochs, callbacks=[RecordRSS()])
    rss = RecordRSS.rss
    growth = (rss[-1] - rss[2]) / rss[2]
    print(
        f"rss after trial 3: {rss[2]:.1f} MiB, after trial {len(rss)}: {rss[-1]:.1f} MiB, "
        f"peak {max(rss):.1f} MiB"
    )
    print(f"rss_growth={growth:.4f}")


if __name__ == "__main__":
    main()
