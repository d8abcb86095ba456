"""Does the proxy that trials train on rank architectures like full training does?

Usage: python benchmarks/proxy_fidelity.py [--archs=15] [--dataset=fashion_mnist]
           [--proxy_examples=10000] [--proxy_epochs=2]
           [--full_examples=50000] [--full_epochs=4] [--seed=0] [--parallel]
           [--results=rows.jsonl]

Samples `--archs` architectures of `ConvNetSpace()` (the space of
benchmarks/fashion_mnist.py) and trains each twice from the same seed: on the
proxy (a subset of the training images for few epochs with the short recipe:
what that benchmark's trials do) and at full scale (all the training images,
more epochs, the final recipe's label smoothing, random translation and
horizontal flip), both scored on the same validation images. Proxies bias the
ranking; this measures by how much, with Kendall's tau and Spearman's rho
between the two scores, and the cost of each in seconds. With `--parallel`
the architectures are shared among one worker process per core, each pinned
to its core (`os.sched_setaffinity`), so each training runs on one core as in
the Fashion-MNIST benchmark's `--parallel` runs; every training is seeded by
its architecture's index, so the scores do not depend on which worker ran it.
With `--results=FILE` each architecture's row is appended to FILE (JSON
lines) as soon as it is done, and rows already there from a run with the same
settings are reused: an interrupted run resumes where it stopped.

Last line: `kendall_tau=<x> spearman=<y> archs=<n> proxy_s=<s> full_s=<s>`.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import kerasnas as kn  # noqa: E402


def train(
    space: kn.spaces.SearchSpace, arch, recipe: kn.Recipe, examples: int, data, seed: int
) -> tuple[float, float]:
    """Best validation accuracy and seconds of one training of `arch` with `recipe`."""
    (x, y), (xv, yv) = data
    epochs = recipe.epochs
    keras.utils.set_random_seed(seed)
    model = recipe.compile(space.build(arch), steps_per_epoch=-(-min(examples, len(x)) // 128))
    images = kn.data.to_dataset(x[:examples], y[:examples], 128, shuffle=True, seed=seed)
    start = time.perf_counter()
    history = model.fit(
        recipe.augment(images),
        validation_data=kn.data.to_dataset(xv, yv, 256),
        epochs=epochs,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    keras.backend.clear_session()
    return max(history.history["val_accuracy"]), seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=15)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--proxy_examples", type=int, default=10_000)
    parser.add_argument("--proxy_epochs", type=int, default=2)
    parser.add_argument("--full_examples", type=int, default=50_000)
    parser.add_argument("--full_epochs", type=int, default=4)
    parser.add_argument("--val_examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", action="store_true",
                        help="one worker process per core, each pinned to its core")  # fmt: skip
    parser.add_argument("--results", default="",
                        help="JSON-lines file of rows, appended to and resumed from")  # fmt: skip
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """What a row's scores depend on: the arguments but how the run is spread and saved."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("parallel", "results")}


def load_rows(path: str, args: argparse.Namespace, archs: list) -> dict:
    """Rows of `path` from a run with these settings, by architecture index."""
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            i = row["index"]
            if (
                row["settings"] == settings(args)
                and i < len(archs)
                and row["arch"] == archs[i].hash()
            ):
                rows[i] = (i, row["proxy"], row["full"], row["proxy_s"], row["full_s"])
    return rows


class Experiment:
    """The data, the space, the two recipes and the sampled architectures of one run."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        (x, y), (xv, yv), _ = kn.data.load(args.dataset)
        self.data = ((x, y), (xv[: args.val_examples], yv[: args.val_examples]))
        self.space = kn.spaces.ConvNetSpace(num_classes=10, input_shape=x.shape[1:])
        # The trials' short recipe and the final one, as in benchmarks/fashion_mnist.py.
        self.proxy_recipe = kn.Recipe(epochs=args.proxy_epochs, batch_size=128, learning_rate=3e-3)
        self.full_recipe = self.proxy_recipe.replace(
            epochs=args.full_epochs, translate=0.1, flip=True, label_smoothing=0.1
        )
        rng = np.random.default_rng(args.seed)
        self.archs = []
        while len(self.archs) < args.archs:
            arch = self.space.sample(rng)
            if all(arch.hash() != a.hash() for a in self.archs):
                self.archs.append(arch)

    def run(self, i: int) -> tuple[int, float, float, float, float]:
        """Architecture `i`'s proxy and full-scale scores and seconds."""
        args, arch = self.args, self.archs[i]
        seed = args.seed * 1000 + i
        p, ps = train(self.space, arch, self.proxy_recipe, args.proxy_examples, self.data, seed)
        f, fs = train(self.space, arch, self.full_recipe, args.full_examples, self.data, seed)
        return i, p, f, ps, fs


_worker: Experiment | None = None


def _start_worker(args: argparse.Namespace, cores) -> None:
    """A pool worker takes a free core from `cores` (a queue), pins itself to it, loads the data."""
    global _worker
    os.sched_setaffinity(0, {cores.get()})
    _worker = Experiment(args)


def _run_in_worker(i: int) -> tuple[int, float, float, float, float]:
    return _worker.run(i)


def main() -> None:
    args = parse_args()
    experiment = Experiment(args)
    n = len(experiment.archs)
    cores = sorted(os.sched_getaffinity(0)) if args.parallel else []
    print(
        f"{n} architectures of ConvNetSpace; proxy: {args.proxy_examples} images x "
        f"{args.proxy_epochs} epochs; full: {args.full_examples} x {args.full_epochs} "
        "(label smoothing, random translation and flip)"
        + (f"; {len(cores)} workers, one core each" if cores else ""),
        flush=True,
    )
    print(f"{'#':>2} {'arch':10} {'proxy':>7} {'full':>7} {'proxy_s':>8} {'full_s':>8}", flush=True)
    results = load_rows(args.results, args, experiment.archs)

    def report(result: tuple[int, float, float, float, float], resumed: bool = False) -> None:
        i, p, f, ps, fs = result
        results[i] = result
        print(f"{i:2d} {experiment.archs[i].hash()[:8]:10} {p:7.4f} {f:7.4f} {ps:8.1f} {fs:8.1f}"
              + ("  (from --results)" if resumed else ""), flush=True)  # fmt: skip
        if args.results and not resumed:
            row = {"settings": settings(args), "index": i, "arch": experiment.archs[i].hash(),
                   "proxy": p, "full": f, "proxy_s": ps, "full_s": fs}  # fmt: skip
            with open(args.results, "a") as out:
                out.write(json.dumps(row) + "\n")

    for i in sorted(results):
        report(results[i], resumed=True)
    todo = [i for i in range(n) if i not in results]

    if cores:
        context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe.
        queue = context.Queue()
        for core in cores:
            queue.put(core)
        with concurrent.futures.ProcessPoolExecutor(
            len(cores), mp_context=context, initializer=_start_worker, initargs=(args, queue)
        ) as pool:
            for result in concurrent.futures.as_completed(
                [pool.submit(_run_in_worker, i) for i in todo]
            ):
                report(result.result())
    else:
        for i in todo:
            report(experiment.run(i))
    rows = [results[i] for i in range(n)]
    proxy, full = [r[1] for r in rows], [r[2] for r in rows]
    proxy_s, full_s = sum(r[3] for r in rows), sum(r[4] for r in rows)
    tau = stats.kendalltau(proxy, full).statistic
    rho = stats.spearmanr(proxy, full).statistic
    top = int(np.argmax(proxy))
    print(f"the proxy's best is full-scale rank {1 + int((np.array(full) > full[top]).sum())} "
          f"of {n} (full {full[top]:.4f}, best full {max(full):.4f})")  # fmt: skip
    print(f"kendall_tau={tau:.3f} spearman={rho:.3f} archs={n} "
          f"proxy_s={proxy_s:.0f} full_s={full_s:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
