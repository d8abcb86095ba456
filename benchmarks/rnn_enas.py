"""ENAS over the recurrent cell space: its chosen cell against random cells, on fortunes.

Usage: python benchmarks/rnn_enas.py [--num_nodes=8] [--units=48] [--seq_len=64]
       [--supernet_epochs=5] [--supernet_windows=4000] [--train_windows=4000]
       [--final_epochs=3] [--random_cells=10] [--seed=0] [--corpus=...]

Character-level language modelling on Debian's `fortunes` (`make datasets`):

1. `kn.Search(RNNCellSpace(...), "enas")`: ENAS's shared cell trained for
   `--supernet_epochs` on the first `--supernet_windows` training windows,
   each step on a cell the LSTM policy samples, the policy rewarded with the
   cell's next-character accuracy on validation batches; the policy's
   candidates are ranked by one-shot validation accuracy, and ENAS's choice
   is the first;
2. ENAS's cell and `--random_cells` cells drawn uniformly are each trained
   from scratch the same way (`--final_epochs` on `--train_windows`
   windows, same seed) and scored on the test split;
3. prints one line per cell and the summary:

    enas cell=<hash> test_bpc=...
    random median_test_bpc=... min=... max=... enas_rank=<k>/<n+1>
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=kn.data.FORTUNES_DIR)
    parser.add_argument("--num_nodes", type=int, default=8)
    parser.add_argument("--units", type=int, default=48)
    parser.add_argument("--seq_len", type=int, default=64)
    parser.add_argument("--supernet_epochs", type=int, default=5)
    parser.add_argument("--supernet_windows", type=int, default=4000)
    parser.add_argument("--train_windows", type=int, default=4000)
    parser.add_argument("--final_epochs", type=int, default=3)
    parser.add_argument("--random_cells", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(args.corpus):
        raise SystemExit(f"rnn_enas.py: no corpus at {args.corpus}; run make datasets (fortunes).")
    text = kn.data.read_text(args.corpus)
    vocabulary = len(kn.data.vocabulary(text))
    (x, y), (xv, yv), (xt, yt) = kn.data.load(f"text:{args.corpus}", seq_len=args.seq_len)
    print(f"corpus={args.corpus} chars={len(text):,} vocabulary={vocabulary} "
          f"windows={len(x)}/{len(xv)}/{len(xt)}", flush=True)  # fmt: skip
    space = kn.spaces.RNNCellSpace(
        num_classes=vocabulary, num_nodes=args.num_nodes, units=args.units,
        learning_rate=args.learning_rate,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        search = kn.Search(
            space, "enas", objective="val_loss", max_trials=1, seed=args.seed, directory=tmp,
            project_name="enas", supernet_epochs=args.supernet_epochs, num_candidates=20,
            retrain_epochs=1, verbose=0,
        )  # fmt: skip
        start = time.perf_counter()
        n = args.supernet_windows
        search.fit(x[:n], y[:n], validation_data=(xv, yv), batch_size=args.batch_size)
        chosen = space.decode(search.oracle.ranking[0]["values"])
        print(f"enas search seconds={time.perf_counter() - start:.0f} "
              f"cell={space.encode(chosen)}", flush=True)  # fmt: skip

    def test_bpc(arch) -> float:
        keras.utils.set_random_seed(args.seed)
        model = space.build(arch)
        n = args.train_windows
        model.fit(x[:n], y[:n], epochs=args.final_epochs, batch_size=args.batch_size, verbose=0)
        return model.evaluate(xt, yt, verbose=0, return_dict=True)["bits_per_character"]

    enas = test_bpc(chosen)
    print(f"enas cell={chosen.hash()[:8]} test_bpc={enas:.4f}", flush=True)
    rng = np.random.default_rng(args.seed)
    randoms = []
    for i in range(args.random_cells):
        arch = space.sample(rng)
        randoms.append(test_bpc(arch))
        print(f"random {i + 1} cell={arch.hash()[:8]} test_bpc={randoms[-1]:.4f}", flush=True)
    rank = 1 + sum(r < enas for r in randoms)
    print(f"random median_test_bpc={statistics.median(randoms):.4f} min={min(randoms):.4f} "
          f"max={max(randoms):.4f} enas_rank={rank}/{len(randoms) + 1}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
