"""Does a one-shot supernet rank architectures like standalone training, at a fraction of the cost?

Usage: python benchmarks/oneshot_ranking.py [--archs=30] [--dataset=fashion_mnist]
           [--train_examples=10000] [--val_examples=1000] [--test_examples=5000]
           [--image_size=0] [--stem_filters=8] [--cells_per_stage=1]
           [--standalone_epochs=10] [--method=uniform] [--oneshot_epochs=6]
           [--oneshot_batch_size=32] [--oneshot_learning_rate=0.002]
           [--oneshot_optimizer=adam] [--drop_max=0.9] [--seed=0] [--oneshot_seed=SEED]
           [--standalone_json=PATH]

The evidence of issue #8. Samples `--archs` distinct (non-isomorphic)
architectures of the NAS-Bench-201 space and

1. trains each standalone from scratch, all with the same recipe
   (`--standalone_epochs` of AdamW with cosine decay), and scores it on the
   validation images: the standalone ranking;
2. trains one supernet once (`--method`: uniform path dropout by default,
   or SPOS, or ENAS) and scores the same architectures through it (each
   path's BatchNorm statistics recalibrated, then validation accuracy): the
   one-shot ranking;

and compares the two rankings with Kendall's tau and Spearman's rho.

Costs are measured wall-clock seconds, also given in training-epoch
equivalents: seconds divided by the mean cost of one standalone epoch (all
the standalone seconds over all the standalone epochs, so building,
tracing and the validation pass are included on both sides). The
standalone cost is every standalone training; the one-shot cost is building
the supernet, training it (tracing included), and calibrating and scoring
the architectures. `cost_ratio` = standalone / one-shot.

Then the one-shot search's choice (the best of the architectures by
one-shot score) is retrained standalone with the same recipe and a fresh
seed, and its test accuracy is compared with random search at the same
total cost: k = the number of standalone trainings that fit into the
one-shot cost plus that retraining; random search trains k of the
standalone-trained architectures (in a random order) and keeps the best by
validation accuracy. Its test accuracy is averaged over `--orders` random
orders; the best of all the architectures (the oracle of random search
given all of the standalone budget) is printed too. Validation images rank;
test images (held out from both) only report.

The defaults take about an hour on 2 CPU cores (more when they share
them): the standalone side (30 x 10 epochs of 10,000 28x28 images) sets the
budget, and the supernet gets what keeps the one-shot side near a
twentieth of it (6 epochs at batch 32 with Adam, about 1,900 steps: with
SGD at batch 128, or 5,000 images, the supernet got too few steps and
ranked near or below zero). Both sides are wall-clock times on a shared
machine, so the ratio moves by 10-20% from run to run. `--oneshot_seed`
repeats the one-shot side with another seed against the same architectures
(with `--standalone_json`, against the same standalone ranking).

`--standalone_json=PATH` saves the standalone results (accuracies and
measured seconds) with the settings that produced them, after each
training, and a later run with the same standalone settings loads them
instead of training again (and trains only those missing, so a long run can
be split), to try one-shot settings against one standalone ranking; the
output says so. A figure from a split run says so on the benchmarks page
(its standalone seconds were measured in parts, under different loads).

Last line: `kendall_tau=<x> spearman=<y> cost_ratio=<standalone/oneshot>`.
"""

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.oneshot import methods  # noqa: E402
from kerasnas.oneshot.train import rank_paths  # noqa: E402

Data = dict[str, tuple[np.ndarray, np.ndarray]]


def load_data(args: argparse.Namespace) -> Data:
    """Train, validation and test subsets (the first examples of each split)."""
    (x, y), (xv, yv), (xt, yt) = kn.data.load(args.dataset)
    return {
        "train": (shrink(x[: args.train_examples], args.image_size), y[: args.train_examples]),
        "val": (shrink(xv[: args.val_examples], args.image_size), yv[: args.val_examples]),
        "test": (shrink(xt[: args.test_examples], args.image_size), yt[: args.test_examples]),
    }


def shrink(x: np.ndarray, size: int) -> np.ndarray:
    """Images average-pooled down to `size` x `size` (an integer factor of their size)."""
    n, h, w, c = x.shape
    if not size or size == h:
        return x
    if h % size or w % size:
        raise ValueError(f"--image_size={size} must divide the images' size {h}x{w}.")
    return x.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))


def make_space(args: argparse.Namespace, data: Data) -> kn.spaces.NASBench201Space:
    x, y = data["train"]
    return kn.spaces.NASBench201Space(
        num_classes=int(y.max()) + 1,
        input_shape=x.shape[1:],
        stem_filters=args.stem_filters,
        cells_per_stage=args.cells_per_stage,
    )


def sample_archs(
    space: kn.spaces.NASBench201Space, n: int, rng: np.random.Generator, exclude: Sequence = ()
) -> list[dict[str, Any]]:
    """`n` uniformly drawn decision values, pairwise non-isomorphic (and not in `exclude`)."""
    seen = {space.decode(v).hash() for v in exclude}
    found: list[dict[str, Any]] = []
    for _ in range(1000 * n):
        if len(found) == n:
            break
        values = {d.name: d.choices[int(rng.integers(len(d.choices)))] for d in space.decisions}
        key = space.decode(values).hash()
        if key not in seen:
            seen.add(key)
            found.append(values)
    return found


def recipe(args: argparse.Namespace) -> kn.Recipe:
    return kn.Recipe(
        epochs=args.standalone_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )


def train_standalone(
    space: kn.spaces.NASBench201Space,
    values: Mapping[str, Any],
    data: Data,
    args: argparse.Namespace,
    seed: int,
) -> dict[str, float]:
    """Trains one architecture from scratch; its validation and test accuracy and cost.

    The cost (`seconds`) is building, training and the validation pass; the
    test pass is not part of it.
    """
    keras.utils.set_random_seed(seed)
    plan = recipe(args)
    x, y = data["train"]
    train = kn.data.to_dataset(x, y, plan.batch_size, shuffle=True, seed=seed)
    start = time.perf_counter()
    model = plan.compile(space.build_model(space.decode(values)), plan.steps_in(train))
    model.fit(train, epochs=plan.epochs, verbose=0)
    val = evaluate(model, data["val"])
    seconds = time.perf_counter() - start
    test = evaluate(model, data["test"])
    params = model.count_params()
    keras.backend.clear_session()
    return {"val": float(val), "test": float(test), "seconds": seconds, "params": params}


def evaluate(model: keras.Model, split: tuple[np.ndarray, np.ndarray]) -> float:
    dataset = kn.data.to_dataset(*split, 256)
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


STANDALONE_SETTINGS = (
    "archs", "dataset", "train_examples", "val_examples", "test_examples", "image_size",
    "stem_filters", "cells_per_stage", "standalone_epochs", "batch_size", "learning_rate", "seed",
)  # fmt: skip


def load_standalone(path: str, args: argparse.Namespace, keys: list[str]) -> list:
    """Saved standalone results of these settings, in order (those trained so far)."""
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        saved = json.load(f)
    settings = {k: getattr(args, k) for k in STANDALONE_SETTINGS}
    if saved.get("settings") != settings or saved.get("archs") != keys:
        print(f"{path} holds standalone results of other settings: training again", flush=True)
        return []
    return saved["results"]


def save_standalone(path: str, args: argparse.Namespace, keys: list[str], results: list) -> None:
    """Writes the results so far (a whole file or none: written aside, then renamed)."""
    settings = {k: getattr(args, k) for k in STANDALONE_SETTINGS}
    with open(path + ".tmp", "w") as f:
        json.dump({"settings": settings, "archs": keys, "results": results}, f, indent=1)
    os.replace(path + ".tmp", path)


def run_oneshot(
    space: kn.spaces.NASBench201Space,
    archs: list[dict[str, Any]],
    data: Data,
    args: argparse.Namespace,
) -> tuple[list[float], float, methods.OneShotResult]:
    """Trains a supernet and scores `archs` through it; (scores, seconds, result)."""
    seed = args.seed if args.oneshot_seed is None else args.oneshot_seed
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    supernet = methods.build_supernet(space)
    train = kn.data.to_dataset(*data["train"], args.oneshot_batch_size, shuffle=True, seed=0)
    val = kn.data.to_dataset(*data["val"], 256)
    options: dict[str, Any] = {}
    if args.method == "uniform":
        options = {"drop_max": args.drop_max}
    result = methods.run(
        args.method,
        supernet,
        train,
        val,
        epochs=args.oneshot_epochs,
        batch_size=args.oneshot_batch_size,
        learning_rate=args.oneshot_learning_rate,
        optimizer=args.oneshot_optimizer,
        seed=seed,
        calibration_batches=args.calibration_batches,
        # ENAS ranks its controller's samples, not given candidates: one, then the 30 below.
        num_candidates=1 if args.method == "enas" else len(archs),
        candidates=None if args.method == "enas" else archs,
        **options,
    )
    if args.method == "enas":
        paths = [supernet.indices(v) for v in archs]
        scores = rank_paths(
            result.trainer, paths, result.calibration, val, args.calibration_batches
        )
    else:
        by_key = {space.key(v): s for v, s in zip(result.ranking, result.scores, strict=True)}
        scores = [by_key[space.key(v)] for v in archs]
    return scores, time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--train_examples", type=int, default=10_000)
    parser.add_argument("--val_examples", type=int, default=1000)
    parser.add_argument("--test_examples", type=int, default=5000)
    parser.add_argument("--image_size", type=int, default=0, help="0: keep the images' size")
    parser.add_argument("--stem_filters", type=int, default=8)
    parser.add_argument("--cells_per_stage", type=int, default=1)
    parser.add_argument("--standalone_epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=128, help="standalone")
    parser.add_argument("--learning_rate", type=float, default=5e-3, help="standalone AdamW")
    parser.add_argument("--method", default="uniform", choices=["uniform", "spos", "enas"])
    parser.add_argument("--oneshot_epochs", type=int, default=6)
    parser.add_argument("--oneshot_batch_size", type=int, default=32)
    parser.add_argument("--oneshot_learning_rate", type=float, default=2e-3)
    parser.add_argument("--oneshot_optimizer", default="adam", choices=["sgd", "adam"])
    parser.add_argument("--drop_max", type=float, default=0.9, help="uniform")
    parser.add_argument("--calibration_batches", type=int, default=4)
    parser.add_argument("--orders", type=int, default=100, help="random-search orders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oneshot_seed", type=int, default=None,
                        help="seed of the one-shot side (default: --seed)")  # fmt: skip
    parser.add_argument("--standalone_json", default="", help="save/load standalone results")
    args = parser.parse_args()

    data = load_data(args)
    space = make_space(args, data)
    archs = sample_archs(space, args.archs, np.random.default_rng(args.seed))
    n = len(archs)
    print(
        f"dataset={args.dataset} train={len(data['train'][0])} val={len(data['val'][0])} "
        f"test={len(data['test'][0])} space=NAS-Bench-201 C={args.stem_filters} "
        f"N={args.cells_per_stage} archs={n}",
        flush=True,
    )

    # 1. Standalone: every architecture from scratch.
    print(f"standalone: {args.standalone_epochs} epochs each, AdamW lr={args.learning_rate}")
    print(f"{'#':>3} {'arch':62} {'params':>7} {'val':>6} {'test':>6} {'sec':>6}", flush=True)
    keys = [space.key(v) for v in archs]
    loaded = load_standalone(args.standalone_json, args, keys)
    if loaded:
        print(f"(the first {len(loaded)} loaded from {args.standalone_json}, measured in an "
              "earlier run)", flush=True)  # fmt: skip
    standalone = []
    for i, values in enumerate(archs):
        if i < len(loaded):
            r = loaded[i]
        else:
            r = train_standalone(space, values, data, args, seed=args.seed * 1000 + i)
            if args.standalone_json:
                save_standalone(args.standalone_json, args, keys, [*standalone, r])
        standalone.append(r)
        print(
            f"{i:3d} {space.key(values):62} {r['params']:7d} {r['val']:6.4f} "
            f"{r['test']:6.4f} {r['seconds']:6.1f}",
            flush=True,
        )
    standalone_s = sum(r["seconds"] for r in standalone)
    epoch_s = standalone_s / (n * args.standalone_epochs)
    training_s = standalone_s / n

    # 2. One-shot: one supernet, the same architectures scored through it.
    print(
        f"one-shot ({args.method}): {args.oneshot_epochs} supernet epochs, batch "
        f"{args.oneshot_batch_size}, {args.oneshot_optimizer} lr={args.oneshot_learning_rate}",
        flush=True,
    )
    scores, oneshot_s, result = run_oneshot(space, archs, data, args)
    build_s = oneshot_s - result.train_time - result.rank_time
    val_acc = [r["val"] for r in standalone]
    kendall, spearman = stats.kendalltau(scores, val_acc), stats.spearmanr(scores, val_acc)
    tau, rho = float(kendall.statistic), float(spearman.statistic)

    # 3. The one-shot choice, retrained; random search at the same total cost.
    chosen = int(np.argmax(scores))
    print(f"retraining the one-shot choice #{chosen} {space.key(archs[chosen])}", flush=True)
    retrained = train_standalone(space, archs[chosen], data, args, seed=args.seed * 1000 + 999)
    search_s = oneshot_s + retrained["seconds"]
    k = int(np.clip(search_s // training_s, 1, n))
    rng = np.random.default_rng(args.seed + 1)
    picks = []
    for _ in range(args.orders):
        subset = rng.permutation(n)[:k]
        picks.append(standalone[subset[np.argmax([val_acc[j] for j in subset])]]["test"])
    random_test = float(np.mean(picks))
    oracle = int(np.argmax(val_acc))
    diff = 100 * (retrained["test"] - random_test)

    def eq(seconds: float) -> str:
        return f"{seconds:7.1f}s = {seconds / epoch_s:6.1f} epoch-eq"

    ranks = stats.rankdata([-v for v in val_acc], method="min")
    print()
    print(f"one standalone epoch (all-in mean) = {epoch_s:.2f}s; one training = {training_s:.1f}s")
    print(f"standalone, {n} archs x {args.standalone_epochs} epochs: {eq(standalone_s)}")
    print(f"one-shot total:                     {eq(oneshot_s)}")
    print(f"  supernet build:                   {eq(build_s)}")
    print(f"  supernet training ({args.oneshot_epochs} epochs):     {eq(result.train_time)}")
    for h in result.history:
        print(f"    epoch {h['epoch']}: loss={h['loss']:.4f} acc={h['accuracy']:.4f} "
              f"time={h['time']:.1f}s")  # fmt: skip
    print(f"  calibrating + scoring {n} archs:    {eq(result.rank_time)}")
    print(f"one-shot scores: min={min(scores):.4f} max={max(scores):.4f}; "
          f"standalone val: min={min(val_acc):.4f} max={max(val_acc):.4f}")  # fmt: skip
    print(
        f"rank correlation one-shot vs standalone: kendall_tau={tau:.4f} "
        f"(p={kendall.pvalue:.3f}) spearman={rho:.4f} (p={spearman.pvalue:.3f})"
    )
    print(
        f"one-shot choice #{chosen} (standalone val rank {ranks[chosen]}/{n}): first training "
        f"val={standalone[chosen]['val']:.4f} test={standalone[chosen]['test']:.4f}; "
        f"retrained val={retrained['val']:.4f} test={retrained['test']:.4f} "
        f"({retrained['seconds']:.1f}s)"
    )
    print(
        f"same total cost ({search_s:.1f}s = {search_s / training_s:.2f} trainings) buys "
        f"random search k={k} standalone trainings"
    )
    print(
        f"random search, best of {k} by val over {args.orders} orders: mean test="
        f"{random_test:.4f} (min {min(picks):.4f}, max {max(picks):.4f}); best of all {n} "
        f"by val: #{oracle} test={standalone[oracle]['test']:.4f}"
    )
    print(
        f"one-shot choice retrained - random search = {diff:+.2f} points: "
        f"{'within' if diff >= -1.0 else 'NOT within'} 1 point"
    )
    print(
        f"cost: standalone {standalone_s:.0f}s vs one-shot {oneshot_s:.0f}s = "
        f"{standalone_s / oneshot_s:.2f}x ({'>=' if standalone_s >= 10 * oneshot_s else '<'} 10x)"
    )
    print(f"kendall_tau={tau:.4f} spearman={rho:.4f} cost_ratio={standalone_s / oneshot_s:.4f}")


if __name__ == "__main__":
    main()
