"""Does the proxy that trials train on rank architectures like full training does?

Usage: python benchmarks/proxy_fidelity.py [--archs=15] [--dataset=fashion_mnist]
           [--proxy_examples=5000] [--proxy_epochs=1] [--proxy_filters=8]
           [--full_examples=20000] [--full_epochs=4] [--full_filters=16] [--seed=0]

Samples `--archs` architectures of the NASNet cell space (the default ops, 5
blocks, 1 cell per stage) and trains each twice from the same seed: on the
proxy (a subset of the training images, few epochs, few filters: what a
search's trials do) and at full scale (more images, epochs and filters), both
scored on the same validation images. Proxies bias the ranking; this measures
by how much, with Kendall's tau and Spearman's rho between the two scores,
and the cost of each in seconds.

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


def train(arch, filters: int, examples: int, epochs: int, data, seed: int) -> tuple[float, float]:
    """Best validation accuracy and seconds of one training of `arch` at a scale."""
    (x, y), (xv, yv) = data
    space = kn.spaces.NASNetSpace(
        num_classes=10, input_shape=x.shape[1:], num_blocks=5, num_cells=1,
        num_reductions=2, filters=filters,
    )  # fmt: skip
    keras.utils.set_random_seed(seed)
    model = kn.Recipe(epochs=epochs, batch_size=128, learning_rate=3e-3).compile(
        space.build(arch), steps_per_epoch=-(-min(examples, len(x)) // 128)
    )
    start = time.perf_counter()
    history = model.fit(
        kn.data.to_dataset(x[:examples], y[:examples], 128, shuffle=True, seed=seed),
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
    parser.add_argument("--proxy_examples", type=int, default=5000)
    parser.add_argument("--proxy_epochs", type=int, default=1)
    parser.add_argument("--proxy_filters", type=int, default=8)
    parser.add_argument("--full_examples", type=int, default=20_000)
    parser.add_argument("--full_epochs", type=int, default=4)
    parser.add_argument("--full_filters", type=int, default=16)
    parser.add_argument("--val_examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (x, y), (xv, yv), _ = kn.data.load(args.dataset)
    data = ((x, y), (xv[: args.val_examples], yv[: args.val_examples]))
    space = kn.spaces.NASNetSpace(num_blocks=5, num_cells=1, num_reductions=2)
    rng = np.random.default_rng(args.seed)
    archs = []
    while len(archs) < args.archs:
        arch = space.sample(rng)
        if all(arch.hash() != a.hash() for a in archs):
            archs.append(arch)
    print(
        f"{args.archs} architectures; proxy: {args.proxy_examples} images x "
        f"{args.proxy_epochs} epochs x {args.proxy_filters} filters; full: "
        f"{args.full_examples} x {args.full_epochs} x {args.full_filters}",
        flush=True,
    )
    print(f"{'arch':10} {'proxy':>7} {'full':>7} {'proxy_s':>8} {'full_s':>8}", flush=True)
    proxy, full, proxy_s, full_s = [], [], 0.0, 0.0
    for i, arch in enumerate(archs):
        seed = args.seed * 1000 + i
        p, ps = train(arch, args.proxy_filters, args.proxy_examples, args.proxy_epochs, data, seed)
        f, fs = train(arch, args.full_filters, args.full_examples, args.full_epochs, data, seed)
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
