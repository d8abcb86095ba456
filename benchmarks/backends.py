"""Keras backends side by side: what runs under each, seconds per trial, final accuracy.

Usage: python benchmarks/backends.py [--parts=matrix,digits,fashion]
           [--backends=tensorflow,jax,torch] [--cores=0,1]

Each backend runs in a process of its own (`KERAS_BACKEND` is read when keras is
first imported), pinned to one core; with two cores, two backends run at once,
one per core. Backends whose package is not installed are left out. Parts:

- `matrix`: every registered space (a small configuration) x every registered
  strategy, a 2-trial, 1-epoch search on 200 digits (random token windows for
  the RNN cell space): "runs" with the seconds per trial (the search's wall
  time over its trials, first builds and compilation included), "refuses"
  (raised at construction: the first words of the message) or "fails".
- `digits`: the demo's search (NASNetSpace of `examples/quickstart.py`, random
  search, 10 trials) with 2 epochs per trial: seconds per trial, best
  validation accuracy, test accuracy of the best model.
- `fashion`: one trial per image space at its default size (random
  architecture of seed 0) on 10,000 Fashion-MNIST training images, 1 epoch,
  batch 128: seconds and test accuracy on the 10,000 test images.

The last lines compare the backends per part: seconds per trial relative to
TensorFlow's.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_BACKENDS = ("tensorflow", "jax", "torch")
PARTS = ("matrix", "digits", "fashion")
IMAGE_SPACES = ("nasnet", "convnet", "macro", "nasbench101", "nasbench201")


def small_space(kn, name: str):
    """A configuration of each registered space that trains a trial in seconds."""
    spaces = kn.spaces
    return {
        "nasnet": lambda: spaces.NASNetSpace(
            num_blocks=2, num_cells=1, num_reductions=1, filters=8,
            ops=["sep_conv_3x3", "max_pool_3x3", "identity"],
        ),
        "convnet": lambda: spaces.ConvNetSpace(widths=(8,), depths=(1,), dense_units=16),
        "macro": lambda: spaces.MacroSpace(stages=(1, 1, 1), init_channels=8, head_channels=16),
        "nasbench101": lambda: spaces.NASBench101Space(
            stem_filters=8, num_stacks=1, cells_per_stack=1
        ),
        "nasbench201": lambda: spaces.NASBench201Space(stem_filters=8, cells_per_stage=1),
        "rnn": lambda: spaces.RNNCellSpace(num_nodes=4, units=8),
    }[name]()  # fmt: skip


#: Keyword arguments that make a strategy's search short.
SHORT = {
    "oneshot": dict(supernet_epochs=1, num_candidates=4, retrain_epochs=1),
    "spos": dict(supernet_epochs=1, num_candidates=4, retrain_epochs=1),
    "enas": dict(supernet_epochs=1, num_candidates=4, retrain_epochs=1),
    "darts": dict(supernet_epochs=1, retrain_epochs=1),
    "gdas": dict(supernet_epochs=1, retrain_epochs=1),
    "prescreen": dict(pool_size=8),
    "morphism": dict(initial_trials=1),
}


def emit(**row) -> None:
    print("ROW " + json.dumps(row), flush=True)


def child_matrix(kn, np) -> None:
    (x, y), (xv, yv), _ = kn.data.load("digits")
    images = (x[:200], y[:200], (xv[:100], yv[:100]))
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, (260, 16))
    text = (
        tokens[:200],
        np.roll(tokens, -1, 1)[:200],
        (tokens[200:], np.roll(tokens, -1, 1)[200:]),
    )
    for space_name in kn.spaces.SPACES:
        for strategy in kn.oracles.STRATEGIES:
            row = dict(part="matrix", space=space_name, strategy=strategy)
            with tempfile.TemporaryDirectory() as directory:
                try:
                    search = kn.Search(
                        small_space(kn, space_name), strategy=strategy, max_trials=2,
                        directory=directory, seed=0, verbose=0, **SHORT.get(strategy, {}),
                    )  # fmt: skip
                except ValueError as e:
                    emit(**row, status="refuses", message=str(e).split(". ")[0][:160])
                    continue
                x_, y_, validation = text if space_name == "rnn" else images
                start = time.perf_counter()
                try:
                    search.fit(x_, y_, validation_data=validation, epochs=1, batch_size=32)
                    done = [r for r in search.results() if r["status"] == "COMPLETED"]
                except Exception as e:  # noqa: BLE001 - the table reports every failure.
                    emit(**row, status="fails", message=f"{type(e).__name__}: {str(e)[:160]}")
                    continue
                seconds = time.perf_counter() - start
                status = "runs" if len(done) == 2 else f"fails ({len(done)}/2 trials completed)"
                emit(**row, status=status, seconds_per_trial=seconds / max(len(done), 1))


def timed_search(kn, space, trials: int, data: tuple, epochs: int, batch_size: int) -> dict:
    """A random search of `trials` trials: seconds, best validation score, test accuracy."""
    (x, y), validation, (xt, yt) = data
    with tempfile.TemporaryDirectory() as directory:
        search = kn.Search(space, strategy="random", max_trials=trials, directory=directory,
                           seed=0, verbose=0)  # fmt: skip
        start = time.perf_counter()
        search.fit(x, y, validation_data=validation, epochs=epochs, batch_size=batch_size)
        seconds = time.perf_counter() - start
        best = max(r["score"] for r in search.results() if r["score"] is not None)
        test = search.best_model().evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    return {"seconds": seconds, "best_val": best, "test": test}


def child_digits(kn, np) -> None:
    space = kn.spaces.NASNetSpace(num_blocks=5, num_cells=2, num_reductions=2, filters=32)
    found = timed_search(kn, space, 10, kn.data.load("digits"), epochs=2, batch_size=32)
    emit(part="digits", seconds_per_trial=found["seconds"] / 10, best_val=found["best_val"],
         test=found["test"])  # fmt: skip


def child_fashion(kn, np) -> None:
    (x, y), (xv, yv), test = kn.data.load("fashion_mnist")
    data = ((x[:10000], y[:10000]), (xv[:2000], yv[:2000]), test)
    for name in IMAGE_SPACES:
        found = timed_search(kn, kn.spaces.SPACES[name](), 1, data, epochs=1, batch_size=128)
        emit(part="fashion", space=name, seconds=found["seconds"], test=found["test"])


def child(part: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    import kerasnas as kn

    {"matrix": child_matrix, "digits": child_digits, "fashion": child_fashion}[part](kn, np)


def run_backend(backend: str, parts: list[str], core: int) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
    script = (
        f"import os, sys; os.sched_setaffinity(0, {{{core}}}); sys.path.insert(0, {HERE!r});"
        "import backends; [backends.child(p) for p in sys.argv[1:]]"
    )
    command = [sys.executable, "-c", script, *parts]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def collect(process: subprocess.Popen, backend: str, rows: list[dict]) -> None:
    for line in process.stdout:
        if line.startswith("ROW "):
            row = {**json.loads(line[4:]), "backend": backend}
            rows.append(row)
            print(" ".join(f"{k}={_text(v)}" for k, v in row.items()), flush=True)
    if process.wait() != 0:
        print(f"note: the {backend} process exited with {process.returncode}", flush=True)


def _text(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def summary(rows: list[dict], backends: list[str]) -> None:
    print("\n== summary")
    matrix = [r for r in rows if r["part"] == "matrix"]
    for space in dict.fromkeys(r["space"] for r in matrix):
        for strategy in dict.fromkeys(r["strategy"] for r in matrix):
            cells = []
            for backend in backends:
                found = [r for r in matrix if (r["space"], r["strategy"], r["backend"])
                         == (space, strategy, backend)]  # fmt: skip
                if not found:
                    continue
                r = found[0]
                seconds = f" {r['seconds_per_trial']:.1f}s" if r["status"] == "runs" else ""
                cells.append(f"{backend}={r['status'].split(' ')[0]}{seconds}")
            print(f"matrix {space:12s} {strategy:10s} " + " ".join(cells))
    for backend in backends:
        runs = [r for r in matrix if r["backend"] == backend and r["status"] == "runs"]
        if runs:
            median = statistics.median(r["seconds_per_trial"] for r in runs)
            print(f"matrix backend={backend} runs={len(runs)} "
                  f"median_seconds_per_trial={median:.2f}")  # fmt: skip
    for r in rows:
        if r["part"] == "digits":
            print(f"digits backend={r['backend']} seconds_per_trial={r['seconds_per_trial']:.1f} "
                  f"best_val={r['best_val']:.4f} test={r['test']:.4f}")  # fmt: skip
    for r in rows:
        if r["part"] == "fashion":
            print(f"fashion backend={r['backend']} space={r['space']} seconds={r['seconds']:.1f} "
                  f"test={r['test']:.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--cores", default="0,1", help="Cores to pin backends to, one each.")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose among {list(PARTS)}")
    backends = [b for b in args.backends.split(",") if importlib.util.find_spec(b)]
    cores = [int(c) for c in args.cores.split(",")]
    print(f"backends={','.join(backends)} parts={','.join(parts)} cores={args.cores}", flush=True)
    rows: list[dict] = []
    for first in range(0, len(backends), len(cores)):
        group = backends[first : first + len(cores)]
        processes = [run_backend(b, parts, core) for b, core in zip(group, cores, strict=False)]
        threads = [threading.Thread(target=collect, args=(p, b, rows))
                   for p, b in zip(processes, group, strict=True)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    summary(rows, backends)


if __name__ == "__main__":
    main()
