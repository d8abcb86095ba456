"""A searched ENAS recurrent cell against Keras's LSTM and GRU on the fortunes corpus.

Usage: python benchmarks/rnn_cell.py [--budget=300] [--strategy=evolution]
       [--num_nodes=8] [--units=64] [--seq_len=64] [--search_windows=2000]
       [--train_windows=8000] [--final_epochs=8] [--learning_rate=0.002] [--seed=0]
       [--corpus=/usr/share/games/fortunes]

Character-level language modelling on Debian's `fortunes` (`make datasets`
installs it; `kn.data.load("text:...")`, contiguous 90/5/5 split):

1. searches `RNNCellSpace(num_nodes, units)` for `--budget` seconds of wall
   clock (`time_budget`), each trial one epoch on the first `--search_windows`
   training windows, ranked by validation bits per character;
2. trains the best cell from scratch for `--final_epochs` epochs on the first
   `--train_windows` windows, and beside it, in the same run and the same
   way (embedding, one recurrent layer, per-step softmax, Adam at
   `--learning_rate`, same epochs, batches and data: `space.baseline`), a
   `keras.layers.LSTM` and a `keras.layers.GRU` model whose units give about
   the same parameter count;
3. prints each model's parameters and test bits per character:

    corpus=/usr/share/games/fortunes chars=2,576,669 vocabulary=113 windows=36234/2013/2013 ...
    search strategy=evolution trials=33 seconds=288 best=6599d6b1 search_val_bpc=4.6379 ...
    model=enas params=88305 test_bpc=2.8763 train_seconds=135
    model=lstm units=92 params=88985 test_bpc=3.1364 train_seconds=50
    model=gru units=103 params=87663 test_bpc=2.9090 train_seconds=64
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner  # noqa: E402

import kerasnas as kn  # noqa: E402


def train_and_test(model, data, epochs: int, batch_size: int) -> tuple[float, float]:
    (x, y), (xv, yv), (xt, yt) = data
    start = time.perf_counter()
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - start
    return model.evaluate(xt, yt, verbose=0, return_dict=True)["bits_per_character"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=kn.data.FORTUNES_DIR)
    parser.add_argument("--budget", type=float, default=300.0, help="Search seconds.")
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--num_nodes", type=int, default=8)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--seq_len", type=int, default=64)
    parser.add_argument("--search_windows", type=int, default=2000)
    parser.add_argument("--train_windows", type=int, default=8000)
    parser.add_argument("--final_epochs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(args.corpus):
        raise SystemExit(f"rnn_cell.py: no corpus at {args.corpus}; run make datasets (fortunes).")
    keras.utils.set_random_seed(args.seed)
    text = kn.data.read_text(args.corpus)
    vocabulary = len(kn.data.vocabulary(text))
    space = kn.spaces.RNNCellSpace(
        num_classes=vocabulary, num_nodes=args.num_nodes, units=args.units,
        learning_rate=args.learning_rate,
    )  # fmt: skip
    (x, y), (xv, yv), (xt, yt) = kn.data.load(f"text:{args.corpus}", seq_len=args.seq_len)
    print(
        f"corpus={args.corpus} chars={len(text):,} vocabulary={vocabulary} "
        f"windows={len(x)}/{len(xv)}/{len(xt)} seq_len={args.seq_len}",
        flush=True,
    )
    kwargs = {"population_size": 8, "sample_size": 3} if args.strategy == "evolution" else {}
    with tempfile.TemporaryDirectory() as tmp:
        search = kn.Search(
            space, args.strategy, max_trials=10_000, seed=args.seed, directory=tmp,
            project_name="rnn", time_budget=args.budget, verbose=0,
            objective=keras_tuner.Objective("val_bits_per_character", "min"), **kwargs,
        )  # fmt: skip
        start = time.perf_counter()
        n = args.search_windows
        search.fit(x[:n], y[:n], validation_data=(xv, yv), epochs=1, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        best = search.best_trials(1)[0]
        arch = space.decode(best.hyperparameters.values)
        print(
            f"search strategy={args.strategy} trials={len(search.completed_trials())} "
            f"seconds={seconds:.0f} best={arch.hash()[:8]} search_val_bpc={best.score:.4f} "
            f"cell={space.encode(arch)}",
            flush=True,
        )
    n = args.train_windows
    data = ((x[:n], y[:n]), (xv, yv), (xt, yt))
    keras.utils.set_random_seed(args.seed)
    enas = space.build(arch)
    bpc, secs = train_and_test(enas, data, args.final_epochs, args.batch_size)
    print(f"model=enas params={enas.count_params()} test_bpc={bpc:.4f} "
          f"train_seconds={secs:.0f}", flush=True)  # fmt: skip
    for kind in ("lstm", "gru"):
        keras.utils.set_random_seed(args.seed)
        model = space.baseline(kind, params=enas.count_params())
        bpc, secs = train_and_test(model, data, args.final_epochs, args.batch_size)
        units = model.get_layer(f"{kind}_0").units
        print(f"model={kind} units={units} params={model.count_params()} test_bpc={bpc:.4f} "
              f"train_seconds={secs:.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
