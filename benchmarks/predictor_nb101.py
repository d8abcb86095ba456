"""The BANANAS predictor on NAS-Bench-101: path against adjacency encodings, by training size.

Usage: python benchmarks/predictor_nb101.py [--sizes=20,50,100,200] [--seeds=5]

Reads `../shared/data/nas-bench-101_20k.csv` (20,001 NAS-Bench-101 cells, their
official module hashes and 108-epoch validation accuracies), builds each cell
as a `kerasnas.spaces.NASBench101Space` architecture (and checks that its
`nasbench_hash` is the official hash, row by row), and encodes it two ways:
BANANAS's path encoding (`encode_paths`, 364 features) and the adjacency
encoding (`encode_one_hot`: the 21 upper-triangular edges and 5 op one-hots).
For each training size and seed it fits the predictor BANANAS uses
(`EnsemblePredictor`: 5 MLPs of 32-32 units, 200 Adam steps, on standardised
accuracies) on that many random cells and ranks all the others by the
ensemble's mean prediction. Prints, per encoding and size, Kendall's tau and
Spearman's rho against the true 108-epoch accuracies (mean and standard
error over seeds).
"""

import argparse
import csv
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.benchmarks.tabular import shared_data_path  # noqa: E402
from kerasnas.oracles._predictor import EnsemblePredictor  # noqa: E402


def read_cells(path: str, space):
    """Architectures, accuracies and the count of rows whose hash kerasnas reproduces."""
    archs, accuracies, matched = [], [], 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["num_vertices"])
            bits = row["adjacency_rowmajor"]
            matrix = [[int(bits[i * n + j]) for j in range(n)] for i in range(n)]
            arch = space.from_spec(matrix, row["ops"].split("|"))
            matched += space.nasbench_hash(arch) == row["hash"]
            archs.append(arch)
            accuracies.append(float(row["val_acc_108ep"]))
    return archs, np.array(accuracies), matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,50,100,200")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    path = shared_data_path("nas-bench-101_20k.csv")
    if path is None:
        sys.exit("predictor_nb101.py: ../shared/data/nas-bench-101_20k.csv not found")
    space = kn.spaces.NASBench101Space()
    start = time.perf_counter()
    archs, accuracy, matched = read_cells(path, space)
    print(f"cells: {len(archs)}; official hash reproduced on {matched} "
          f"({time.perf_counter() - start:.0f} s to read and hash)")  # fmt: skip
    encodings = {
        "paths": np.stack([space.encode_paths(a) for a in archs]).astype("float32"),
        "adjacency": np.stack([space.encode_one_hot(a) for a in archs]).astype("float32"),
    }
    for name, x in encodings.items():
        print(f"encoding {name}: {x.shape[1]} features")
    print(f"{'encoding':10s} {'train':>5s} {'kendall_tau':>17s} {'spearman_rho':>17s}")
    for name, x in encodings.items():
        for size in [int(s) for s in args.sizes.split(",")]:
            taus, rhos = [], []
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                order = rng.permutation(len(archs))
                train, rest = order[:size], order[size:]
                y = accuracy[train]
                predictor = EnsemblePredictor(x.shape[1])
                predictor.fit(x[train], (y - y.mean()) / (y.std() or 1.0), rng)
                predicted = predictor.predict(x[rest]).mean(axis=1)
                taus.append(stats.kendalltau(predicted, accuracy[rest]).statistic)
                rhos.append(stats.spearmanr(predicted, accuracy[rest]).statistic)

            def cell(v):
                se = statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0.0
                return f"{statistics.fmean(v):.3f} ± {se:.3f}"

            print(f"{name:10s} {size:5d} {cell(taus):>17s} {cell(rhos):>17s}", flush=True)


if __name__ == "__main__":
    main()
