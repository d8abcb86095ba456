"""Network-morphism search against random search, at the same total training epochs.

Usage: python benchmarks/morphism_vs_random.py [--trials=8] [--epochs=3]
           [--dataset=digits] [--train=0] [--children=3] [--seed=0]

Both searches run on the same NASNet cell space and data, `--trials` trials of
`--epochs` epochs each (so the same total epochs). Morphism search starts from
2 random roots and grows children that inherit their parents' weights.

Then, for the last `--children` children that inherited, the same network is
trained `--epochs` epochs from scratch (all weights re-initialised,
`keras.models.clone_model`, compiled the same way) and compared with the
child's own score after the same epochs from inherited weights.

The last line is
`morphism_best=<acc> random_best=<acc> inherited=<acc> scratch=<acc>`
(best validation accuracy of each search; the mean over the compared
children, inherited vs from scratch).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402


def space() -> kn.spaces.NASNetSpace:
    return kn.spaces.NASNetSpace(
        num_blocks=3, num_cells=1, num_reductions=1, filters=16, learning_rate=0.01
    )


def search(strategy, directory, data, args, **kwargs) -> tuple[kn.Search, float]:
    (x, y), (xv, yv) = data
    start = time.perf_counter()
    s = kn.Search(
        space(), strategy=strategy, max_trials=args.trials, seed=args.seed,
        directory=directory, project_name=strategy, overwrite=True, **kwargs,
    )  # fmt: skip
    s.fit(x, y, validation_data=(xv, yv), epochs=args.epochs, batch_size=64)
    return s, time.perf_counter() - start


def from_scratch(space, values, data, args, seed: int) -> float:
    """Best validation accuracy of a trial's network trained from fresh weights."""
    (x, y), (xv, yv) = data
    keras.utils.set_random_seed(seed)
    model = kn.morph.lineage.build(space, values)  # Compiled like the space's models.
    fresh = keras.models.clone_model(model)  # New layers from configs: fresh initial weights.
    fresh.compile_from_config(model.get_compile_config())
    history = fresh.fit(
        x, y, validation_data=(xv, yv), epochs=args.epochs, batch_size=64, verbose=0
    )
    curve = ", ".join(f"{v:.3f}" for v in history.history["val_accuracy"])
    print(f"  from scratch: val_accuracy per epoch {curve}", flush=True)
    return float(max(history.history["val_accuracy"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--train", type=int, default=0, help="training examples (0: all)")
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (x, y), (xv, yv), _ = kn.data.load(args.dataset)
    if args.train:
        x, y = x[: args.train], y[: args.train]
    data = ((x, y), (xv, yv))
    print(
        f"dataset={args.dataset} train={len(x)} val={len(xv)} trials={args.trials} "
        f"epochs/trial={args.epochs} total_epochs/search={args.trials * args.epochs}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as directory:
        rand, rand_time = search("random", directory, data, args)
        morph, morph_time = search("morphism", directory, data, args, initial_trials=2)
        records = morph.results()
        children = [r for r in records if r["morph"] and r["morph"]["inherited"]]
        children = children[-args.children :]
        inherited, scratch = [], []
        for record in children:
            values = morph.oracle.trials[record["trial_id"]].hyperparameters.values
            seed = args.seed + int(record["trial_id"])
            acc = from_scratch(morph.space, values, data, args, seed)
            inherited.append(record["score"])
            scratch.append(acc)
            print(
                f"child trial {record['trial_id']} (parent {record['morph']['parent']}, "
                f"{len(record['morph']['ops'])} ops from its root, params={record['params']:,}): "
                f"inherited={record['score']:.4f} scratch={acc:.4f}",
                flush=True,
            )
        best_random = max(r["score"] for r in rand.results() if r["score"] is not None)
        best_morph = max(r["score"] for r in records if r["score"] is not None)
    print(f"random:   best val_accuracy={best_random:.4f} in {rand_time:.0f}s")
    print(f"morphism: best val_accuracy={best_morph:.4f} in {morph_time:.0f}s "
          f"({len([r for r in records if r['morph']])} children)")  # fmt: skip
    mean_inherited = float(np.mean(inherited)) if inherited else float("nan")
    mean_scratch = float(np.mean(scratch)) if scratch else float("nan")
    print(
        f"morphism_best={best_morph:.4f} random_best={best_random:.4f} "
        f"inherited={mean_inherited:.4f} scratch={mean_scratch:.4f}"
    )


if __name__ == "__main__":
    main()
