"""Does the proxy that trials train on rank architectures like full training does?

Usage: python benchmarks/proxy_fidelity.py [--archs=15] [--dataset=fashion_mnist]
           [--proxy_examples=10000] [--proxy_epochs=2]
           [--full_examples=50000] [--full_epochs=4] [--seed=0]

Samples `--archs` architectures of `ConvNetSpace()` (the space of
benchmarks/fashion_mnist.py) and trains each twice from the same seed: on the
proxy (a subset of the training images for few epochs with the short recipe:
what that benchmark's trials do) and at full scale (all the training images,
more epochs, the final recipe's label smoothing, random translation and
horizontal flip), both scored on the same validation images. Proxies bias the
ranking; this measures by how much, with Kendall's tau and Spearman's rho
between the two scores, and the cost of each in seconds.

Last line: `kendall_tau=<x> spearman=<y> archs=<n> proxy_s=<s> full_s=<s>`.
"""

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=15)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--proxy_examples", type=int, default=10_000)
    parser.add_argument("--proxy_epochs", type=int, default=2)
    parser.add_argument("--full_examples", type=int, default=50_000)
    parser.add_argument("--full_epochs", type=int, default=4)
    parser.add_argument("--val_examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (x, y), (xv, yv), _ = kn.data.load(args.dataset)
    data = ((x, y), (xv[: args.val_examples], yv[: args.val_examples]))
    space = kn.spaces.ConvNetSpace(num_classes=10, input_shape=x.shape[1:])
    # The trials' short recipe and the final one, as in benchmarks/fashion_mnist.py.
    proxy_recipe = kn.Recipe(epochs=args.proxy_epochs, batch_size=128, learning_rate=3e-3)
    full_recipe = proxy_recipe.replace(
        epochs=args.full_epochs, translate=0.1, flip=True, label_smoothing=0.1
    )
    rng = np.random.default_rng(args.seed)
    archs = []
    while len(archs) < args.archs:
        arch = space.sample(rng)
        if all(arch.hash() != a.hash() for a in archs):
            archs.append(arch)
    print(
        f"{args.archs} architectures of ConvNetSpace; proxy: {args.proxy_examples} images x "
        f"{args.proxy_epochs} epochs; full: {args.full_examples} x {args.full_epochs} "
        "(label smoothing, random translation and flip)",
        flush=True,
    )
    print(f"{'arch':10} {'proxy':>7} {'full':>7} {'proxy_s':>8} {'full_s':>8}", flush=True)
    proxy, full, proxy_s, full_s = [], [], 0.0, 0.0
    for i, arch in enumerate(archs):
        seed = args.seed * 1000 + i
        p, ps = train(space, arch, proxy_recipe, args.proxy_examples, data, seed)
        f, fs = train(space, arch, full_recipe, args.full_examples, data, seed)
        proxy.append(p)
        full.append(f)
        proxy_s += ps
        full_s += fs
        print(f"{arch.hash()[:8]:10} {p:7.4f} {f:7.4f} {ps:8.1f} {fs:8.1f}", flush=True)
    tau = stats.kendalltau(proxy, full).statistic
    rho = stats.spearmanr(proxy, full).statistic
    top = int(np.argmax(proxy))
    print(f"the proxy's best is full-scale rank {1 + int((np.array(full) > full[top]).sum())} "
          f"of {len(archs)} (full {full[top]:.4f}, best full {max(full):.4f})")  # fmt: skip
    print(f"kendall_tau={tau:.3f} spearman={rho:.3f} archs={len(archs)} "
          f"proxy_s={proxy_s:.0f} full_s={full_s:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
