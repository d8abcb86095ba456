"""Does DARTS collapse to parameter-free ops on NAS-Bench-201, and do the remedies help?

Usage: python benchmarks/darts_collapse.py [--dataset=fashion_mnist] [--train_examples=2000]
           [--val_examples=2000] [--test_examples=5000] [--stem_filters=8]
           [--cells_per_stage=1] [--epochs=6] [--arch_learning_rate=3e-4]
           [--parameter_free_limit=2] [--max_parameter_free=3] [--warmup_epochs=3]
           [--retrain_examples=5000]
           [--retrain_epochs=6] [--reference=ARCH_STRING] [--gdas] [--seed=0]

DARTS (Liu et al. 2019) on the NAS-Bench-201 space is known to drift to
parameter-free ops (skip connections, pooling, `none`): the architecture
weights of the ops without weights of their own grow, and the derived cell
ends up with few or no convolutions (Dong & Yang 2020; DARTS+, Liang et al.
2019). Two remedies: `methods.run("darts", ..., parameter_free_limit=k)`
derives at most k parameter-free edges, the weakest others giving way to
their best op with weights (P-DARTS, Chen et al. 2019): "remedy" below;
`max_parameter_free=n` stops at the end of the first epoch whose argmax
architecture has `n` parameter-free edges, and keeps the architecture
derived the epoch before: "early_stop".

This runs first-order DARTS on the same data and supernet seed without and
with each remedy, the early stop after `--warmup_epochs` of training the
shared weights alone (single paths, as SPOS; the architecture weights start
learning only once the convolutions have weights worth choosing; 0 skips
this run), and GDAS with the limit (`--no-gdas` skips it); prints each
epoch's argmax and derived architecture and their numbers of
parameter-free edges, then retrains every
derived architecture standalone from scratch with the same recipe (AdamW,
cosine decay, `--retrain_epochs` on the first `--retrain_examples`
training images) and reports its test accuracy, next to a reference cell
with convolutions (`--reference`, by default the best NAS-Bench-201 cell on
CIFAR-10) retrained the same way.

Last line:
`darts_parameter_free=<n> darts_acc=<a> remedy_parameter_free=<n> remedy_acc=<a>`.
"""

import argparse
import os
import time
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.oneshot import methods  # noqa: E402
from kerasnas.oneshot.train import (  # noqa: E402
    OneShotTrainer,
    rebatch,
    single_path,
    sparse_labels,
)

Data = dict[str, tuple[np.ndarray, np.ndarray]]
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")


def load_data(args: argparse.Namespace) -> Data:
    """Train, validation and test subsets (the first examples of each split)."""
    (x, y), (xv, yv), (xt, yt) = kn.data.load(args.dataset)
    return {
        "train": (x[: args.train_examples], y[: args.train_examples]),
        "retrain": (x[: args.retrain_examples], y[: args.retrain_examples]),
        "val": (xv[: args.val_examples], yv[: args.val_examples]),
        "test": (xt[: args.test_examples], yt[: args.test_examples]),
    }


def parameter_free(values: Mapping[str, Any]) -> int:
    """Edges of the cell whose op has no weights (none, skip, pooling)."""
    return sum(op in PARAMETER_FREE for op in values.values())


def warm_up(supernet: Any, train: Any, args: argparse.Namespace) -> None:
    """Trains the shared weights alone for `--warmup_epochs` (SPOS paths), alpha untouched."""
    train = rebatch(sparse_labels(train), args.batch_size, drop_remainder=True)
    steps = sum(1 for _ in train)
    total = steps * args.warmup_epochs
    trainer = OneShotTrainer(supernet, total, learning_rate=args.learning_rate)
    rng, step = np.random.default_rng(args.seed), 0
    for epoch in range(args.warmup_epochs):
        start = time.perf_counter()
        step, loss, acc = trainer.train_epoch(train, single_path(supernet), rng, step, total)
        print(
            f"  warm-up epoch {epoch + 1}/{args.warmup_epochs} loss={loss:.4f} "
            f"accuracy={acc:.4f} time={time.perf_counter() - start:.1f}s",
            flush=True,
        )


def search(
    space: kn.spaces.NASBench201Space,
    data: Data,
    args: argparse.Namespace,
    method: str,
    warmup: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """One DARTS/GDAS search; the derived architecture and the per-epoch history."""
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    supernet = methods.build_supernet(space)
    train = kn.data.to_dataset(*data["train"], args.batch_size, shuffle=True, seed=args.seed)
    if warmup:
        warm_up(supernet, train, args)
    result = methods.run(
        method,
        supernet,
        train,
        kn.data.to_dataset(*data["val"], args.batch_size, shuffle=True, seed=args.seed + 1),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        num_candidates=1,
        arch_learning_rate=args.arch_learning_rate,
        **options,
    )
    seconds = time.perf_counter() - start
    for h in result.history:
        print(
            f"  epoch {h['epoch']}: argmax parameter_free={h['parameter_free']} derived "
            f"{space.key(h['architecture'])} ({parameter_free(h['architecture'])}) "
            f"supernet_acc={h['accuracy']:.4f}",
            flush=True,
        )
    arch = result.ranking[0]
    print(f"  derived: {space.key(arch)} ({parameter_free(arch)} parameter-free)", flush=True)
    return {"arch": arch, "epochs": len(result.history), "seconds": seconds}


def retrain(
    space: kn.spaces.NASBench201Space,
    values: Mapping[str, Any],
    data: Data,
    args: argparse.Namespace,
) -> float:
    """Test accuracy of the architecture trained from scratch with the standalone recipe."""
    keras.utils.set_random_seed(args.seed + 1000)
    recipe = kn.Recipe(epochs=args.retrain_epochs, batch_size=128, learning_rate=5e-3)
    train = kn.data.to_dataset(*data["retrain"], recipe.batch_size, shuffle=True, seed=args.seed)
    model = recipe.compile(space.build_model(space.decode(values)), recipe.steps_in(train))
    model.fit(train, epochs=recipe.epochs, verbose=0)
    test = kn.data.to_dataset(*data["test"], 256)
    accuracy = float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])
    keras.backend.clear_session()
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--train_examples", type=int, default=2000)
    parser.add_argument("--val_examples", type=int, default=2000)
    parser.add_argument("--test_examples", type=int, default=5000)
    parser.add_argument("--stem_filters", type=int, default=8)
    parser.add_argument("--cells_per_stage", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=0.05, help="shared weights (SGD)")
    parser.add_argument("--arch_learning_rate", type=float, default=3e-4)
    parser.add_argument("--parameter_free_limit", type=int, default=2)
    parser.add_argument("--max_parameter_free", type=int, default=3)
    parser.add_argument("--retrain_examples", type=int, default=5000)
    parser.add_argument("--retrain_epochs", type=int, default=6)
    parser.add_argument(
        "--warmup_epochs",
        type=int,
        default=3,
        help="also: weights-only warm-up, then the early stop",
    )
    parser.add_argument(
        "--reference",
        default="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        help="a NAS-Bench-201 arch string retrained for comparison ('' skips it)",
    )
    parser.add_argument("--gdas", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_data(args)
    x, y = data["train"]
    space = kn.spaces.NASBench201Space(
        num_classes=int(y.max()) + 1,
        input_shape=x.shape[1:],
        stem_filters=args.stem_filters,
        cells_per_stage=args.cells_per_stage,
    )
    print(
        f"dataset={args.dataset} train={len(x)} val={len(data['val'][0])} "
        f"test={len(data['test'][0])} space=NAS-Bench-201 C={args.stem_filters} "
        f"N={args.cells_per_stage} epochs={args.epochs} "
        f"arch_learning_rate={args.arch_learning_rate}",
        flush=True,
    )
    limit = {"parameter_free_limit": args.parameter_free_limit}
    stop = {"max_parameter_free": args.max_parameter_free}
    runs: dict[str, tuple[str, dict[str, Any]]] = {
        "darts": ("darts", {}),
        "remedy": ("darts", limit),
        "early_stop": ("darts", stop),
    }
    if args.warmup_epochs:
        runs["warmup"] = ("darts", {**stop, "warmup": True})
    if args.gdas:
        runs["gdas"] = ("gdas", {})
        runs["gdas_limit"] = ("gdas", limit)
    found = {}
    for name, (method, options) in runs.items():
        print(f"{name}: {method} {options}", flush=True)
        found[name] = search(space, data, args, method, **options)
    if args.reference:
        arch = space.values_from_string(args.reference)
        found["reference"] = {"arch": arch, "epochs": 0, "seconds": 0.0}
    print(f"retraining each derived architecture for {args.retrain_epochs} epochs", flush=True)
    for name, run in found.items():
        run["acc"] = retrain(space, run["arch"], data, args)
        print(f"  {name}: test={run['acc']:.4f}", flush=True)
    print()
    print(f"{'run':10} {'arch':96} {'free':>4} {'epochs':>6} {'search_s':>8} {'test':>6}")
    for name, run in found.items():
        print(
            f"{name:10} {space.key(run['arch']):96} {parameter_free(run['arch']):4d} "
            f"{run['epochs']:6d} {run['seconds']:8.1f} {run['acc']:6.4f}"
        )
    darts, remedy = found["darts"], found["remedy"]
    print(
        f"darts_parameter_free={parameter_free(darts['arch'])} darts_acc={darts['acc']:.4f} "
        f"remedy_parameter_free={parameter_free(remedy['arch'])} remedy_acc={remedy['acc']:.4f}"
    )


if __name__ == "__main__":
    main()
