"""How well does each cheap estimator rank architectures, at what cost? One table, one run.

Usage: python benchmarks/ranking.py [--ground_truth=PATH] [--train_ground_truth]
           [--seeds=1] [--estimators=all]

The ground truth is committed (`benchmarks/data/ranking_nb201_fashion_mnist.json`):
50 distinct architectures of the NAS-Bench-201 space (C=8, one cell per stage,
28x28 Fashion-MNIST), each trained standalone from scratch twice (two seeds)
with one recipe (8 epochs of AdamW on 10,000 training images), with its
validation accuracy (the 10,000 validation images) and test accuracy (the
10,000 test images), each the mean of the two trainings, its parameters and
the measured seconds of each training, and the settings that made it.

Then, in one run, every cheap estimator scores the same architectures:

- each zero-cost proxy of `kn.proxies` (synflow, naswot, snip, grad_norm,
  jacob_cov, zico, meco) on one batch of 64 training images, the paper's
  `vote` (synflow, jacob_cov, snip) and the votes of `--votes` (by default
  naswot with zico, with FLOPs, with params), and params and FLOPs: each
  architecture built from a fresh seed, its proxies computed;
- short training: `--short_epochs` epoch(s) on `--short_examples` images;
- successive halving's first rung (`kn.Halving(min_epochs=1)`): one epoch on
  all the training images, the recipe of the ground truth;
- a weight-sharing supernet per `--supernet_methods` (trained once per seed
  of `--supernet_seeds`, each path's BatchNorm statistics recalibrated, then
  scored on the validation images by its loss, as `methods.run` ranks by
  default, and by its accuracy (`_acc`); the tau shown is the mean over seeds).
  Its training is the library's default (`methods.run`: Adam, batch 32 and
  300,000 examples, i.e. 30 epochs of the 10,000 images, for uniform and
  SPOS) unless `--supernet_epochs`, `--supernet_batch_size`, ...
  say otherwise;
- BANANAS's predictor (`--estimators=predictor`): fitted on
  `--predictor_trained` architectures (10 and 20) with their ground truth,
  it ranks the others, with the path encoding alone and with the proxy
  features `--predictor_proxies` (naswot+flops) beside it; mean over
  `--predictor_splits` random splits.

For each it prints Kendall's tau and Spearman's rho against the ground
truth's validation accuracy, its cost in seconds (measured here: building,
scoring or training, per architecture summed) and as a ratio of the
standalone cost (the ground truth's measured seconds, one run), and the test
accuracy (ground truth) of the network it would pick, in one table. Its
last line:

    best=<estimator> kendall_tau=<x> cost_ratio=<y> params_tau=<z> supernet_tau=<w>

(best: the estimator of highest tau other than the params and FLOPs rows,
votes that count them included; supernet:
the first of `--supernet_methods`, ranked by loss: its mean tau over the seeds).

`--train_ground_truth --run=K` trains run K (the K-th seed) of every
architecture into `<ground_truth>.runK` (resumably: rewritten after each
training; the runs can train at once, one process each), and writes the
ground truth itself once every run is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Every cost, the ground truth's and the estimators', is measured on one core (two ground-truth
# runs train at once on a 2-core machine).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.oneshot import methods  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GROUND_TRUTH = os.path.join(HERE, "data", "ranking_nb201_fashion_mnist.json")

#: The settings of the committed ground truth.
SETTINGS = {
    "dataset": "fashion_mnist",
    "train_examples": 10_000,
    "val_examples": 10_000,
    "test_examples": 10_000,
    "stem_filters": 8,
    "cells_per_stage": 1,
    "archs": 50,
    "epochs": 8,
    "batch_size": 128,
    "learning_rate": 5e-3,
    "seed": 0,
    "runs": 2,
}

Data = dict[str, tuple[np.ndarray, np.ndarray]]


def load_data(settings: Mapping[str, Any]) -> Data:
    """Train, validation and test subsets (the first examples of each split)."""
    (x, y), (xv, yv), (xt, yt) = kn.data.load(settings["dataset"])
    n_train, n_val, n_test = (settings[f"{k}_examples"] for k in ("train", "val", "test"))
    return {"train": (x[:n_train], y[:n_train]), "val": (xv[:n_val], yv[:n_val]),
            "test": (xt[:n_test], yt[:n_test])}  # fmt: skip


def make_space(settings: Mapping[str, Any], data: Data) -> kn.spaces.NASBench201Space:
    x, y = data["train"]
    return kn.spaces.NASBench201Space(
        num_classes=int(y.max()) + 1,
        input_shape=x.shape[1:],
        stem_filters=settings["stem_filters"],
        cells_per_stage=settings["cells_per_stage"],
    )


def sample_archs(space: kn.spaces.SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` uniformly drawn decision values, pairwise non-isomorphic."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    while len(found) < n:
        arch = space.sample(rng)
        if arch.hash() not in seen:
            seen.add(arch.hash())
            found.append(space.encode(arch))
    return found


def recipe(settings: Mapping[str, Any], epochs: int | None = None) -> kn.Recipe:
    return kn.Recipe(
        epochs=epochs or settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
    )


def evaluate(model: keras.Model, split: tuple[np.ndarray, np.ndarray]) -> float:
    dataset = kn.data.to_dataset(*split, 256)
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def train_standalone(
    space: kn.spaces.SearchSpace,
    values: Mapping[str, Any],
    data: Data,
    settings: Mapping[str, Any],
    seed: int,
    epochs: int | None = None,
    examples: int | None = None,
) -> dict[str, float]:
    """Trains one architecture from scratch: its accuracies, parameters and cost.

    The cost (`seconds`) is building, training and the validation pass; the
    test pass is not part of it.
    """
    keras.utils.set_random_seed(seed)
    plan = recipe(settings, epochs)
    x, y = data["train"]
    x, y = x[:examples], y[:examples]
    train = kn.data.to_dataset(x, y, plan.batch_size, shuffle=True, seed=seed)
    start = time.perf_counter()
    model = plan.compile(space.build_model(space.decode(values)), plan.steps_in(train))
    model.fit(train, epochs=plan.epochs, verbose=0)
    val = evaluate(model, data["val"])
    seconds = time.perf_counter() - start
    test = evaluate(model, data["test"])
    params = int(model.count_params())
    keras.backend.clear_session()
    return {"val": val, "test": test, "seconds": seconds, "params": params}


def read_ground_truth(path: str) -> dict[str, Any]:
    with open(path) as f:
        truth = json.load(f)
    if truth.get("settings") != SETTINGS:
        raise SystemExit(
            f"{path} was trained with other settings ({truth.get('settings')}); this script's "
            f"are {SETTINGS}. Train it again with --train_ground_truth --ground_truth=NEW_PATH."
        )
    return truth


def write_json(path: str, content: Any) -> None:
    """Writes a whole file or none: aside, then renamed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(content, f, indent=1)
    os.replace(path + ".tmp", path)


def train_ground_truth(path: str, run: int) -> None:
    """Trains run `run` of every architecture into `path.run<run>`; then merges the runs."""
    if not 0 <= run < SETTINGS["runs"]:
        raise SystemExit(f"--run must lie in [0, {SETTINGS['runs']}). Received: {run}.")
    data = load_data(SETTINGS)
    space = make_space(SETTINGS, data)
    archs = [space.to_string(v) for v in sample_archs(space, SETTINGS["archs"], SETTINGS["seed"])]
    part = f"{path}.run{run}"
    done = read_ground_truth(part) if os.path.exists(part) else {"settings": SETTINGS}
    done.update(archs=archs, results=done.get("results", []))
    print(f"ground truth run {run}: {len(done['results'])}/{len(archs)} trained in {part}",
          flush=True)  # fmt: skip
    for i in range(len(done["results"]), len(archs)):
        values = space.values_from_string(archs[i])
        seed = (SETTINGS["seed"] * SETTINGS["runs"] + run) * 1000 + i
        r = train_standalone(space, values, data, SETTINGS, seed=seed)
        done["results"].append(r)
        write_json(part, done)
        print(f"{i:3d} {archs[i]} params={r['params']} val={r['val']:.4f} "
              f"test={r['test']:.4f} seconds={r['seconds']:.1f}", flush=True)  # fmt: skip
    merge_runs(path, archs)


def merge_runs(path: str, archs: list[str]) -> None:
    """Writes the ground truth from its runs' files, once all of them are complete."""
    runs = []
    for k in range(SETTINGS["runs"]):
        part = f"{path}.run{k}"
        if not os.path.exists(part) or len(read_ground_truth(part)["results"]) < len(archs):
            print(f"run {k} is not complete yet: the ground truth is written after it")
            return
        runs.append(read_ground_truth(part)["results"])
    results = []
    for per_run in zip(*runs, strict=True):
        results.append({
            "val": float(np.mean([r["val"] for r in per_run])),
            "test": float(np.mean([r["test"] for r in per_run])),
            "params": per_run[0]["params"],
            "runs": [{k: r[k] for k in ("val", "test", "seconds")} for r in per_run],
        })  # fmt: skip
    write_json(path, {"settings": SETTINGS, "archs": archs, "results": results})
    print(f"ground truth written: {path}")


# -- The cheap estimators ------------------------------------------------------------
class Estimate:
    """One estimator's scores of the architectures (higher = predicted better) and cost."""

    def __init__(self, name: str, scores: Sequence[float], seconds: float, note: str = ""):
        self.name, self.scores, self.seconds, self.note = name, list(scores), seconds, note


VOTES: list[tuple[str, ...]] = []  # Other proxy sets to vote with (--votes).


def proxy_estimates(space: Any, archs: list[dict], data: Data, seed: int) -> list[Estimate]:
    """Every proxy of `kn.proxies`, their vote, params and FLOPs, of freshly built networks."""
    x, y = data["train"]
    scores, seconds, build_seconds = [], [], []
    for i, values in enumerate(archs):
        keras.utils.set_random_seed(seed * 1000 + i)
        start = time.perf_counter()
        model = space.build_model(space.decode(values))
        built = time.perf_counter()
        scores.append(kn.proxies.score(model, x, y, seed=seed))
        seconds.append(time.perf_counter() - start)
        build_seconds.append(built - start)
        keras.backend.clear_session()
    total = float(np.sum(seconds))
    out = [Estimate(name, [s[name] for s in scores], total, "all proxies together")
           for name in kn.proxies.PROXIES if name not in ("params", "flops")]  # fmt: skip
    out.append(Estimate("vote", kn.proxies.vote(scores), total, f"of {kn.proxies.VOTE_PROXIES}"))
    for names in VOTES:
        out.append(Estimate(f"vote[{'+'.join(names)}]", kn.proxies.vote(scores, names), total))
    for name in ("params", "flops"):
        out.append(Estimate(name, [s[name] for s in scores], float(np.sum(build_seconds)), "build"))
    return out


def training_estimate(
    name: str, space: Any, archs: list[dict], data: Data, seed: int, epochs: int, examples: int
) -> Estimate:
    """Validation accuracy after a short training with the ground truth's recipe."""
    runs = [train_standalone(space, v, data, SETTINGS, seed * 1000 + i, epochs, examples)
            for i, v in enumerate(archs)]  # fmt: skip
    note = f"{epochs} epoch(s) of {examples} images"
    return Estimate(name, [r["val"] for r in runs], float(sum(r["seconds"] for r in runs)), note)


def supernet_estimate(
    method: str, space: Any, archs: list[dict], data: Data, seed: int, args: argparse.Namespace
) -> list[Estimate]:
    """Each architecture's one-shot validation loss (and accuracy) through one supernet."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    supernet = methods.build_supernet(space)
    # The library's defaults where a flag is left at 0 (or ""). `run` rebatches the
    # examples, whose order the shuffle sets, to its batch size.
    train = kn.data.to_dataset(*data["train"], 256, shuffle=True, seed=seed)
    n_val = args.supernet_val_examples or len(data["val"][0])
    val = kn.data.to_dataset(data["val"][0][:n_val], data["val"][1][:n_val], 256)
    result = methods.run(
        method, supernet, train, val, epochs=args.supernet_epochs or None,
        batch_size=args.supernet_batch_size or None,
        learning_rate=args.supernet_learning_rate or None,
        optimizer=args.supernet_optimizer or None, seed=seed,
        calibration_batches=args.calibration_batches, num_candidates=len(archs),
        candidates=archs, progress=False,
    )  # fmt: skip
    by_key = {space.key(v): sc for v, sc in zip(result.ranking, result.scores, strict=True)}
    settings = result.settings
    note = (f"{settings['epochs']} epochs, batch {settings['batch_size']}, "
            f"{settings['optimizer']} {settings['learning_rate']:g}")  # fmt: skip
    seconds = time.perf_counter() - start
    # The same trained supernet, each path scored by its validation accuracy instead.
    start = time.perf_counter()
    accuracies = []
    for values in archs:
        path = supernet.path(values)
        result.trainer.calibrate(result.calibration, path, args.calibration_batches)
        accuracies.append(result.trainer.accuracy(val, path))
    by_accuracy = seconds - result.rank_time + time.perf_counter() - start
    return [
        Estimate(
            f"supernet_{method}",
            [by_key[space.key(v)] for v in archs],
            seconds,
            note + ", by val loss",
        ),  # fmt: skip
        Estimate(f"supernet_{method}_acc", accuracies, by_accuracy, note + ", by val accuracy"),
    ]


def predictor_rows(
    space: Any, archs: list[dict], truth: list[dict], data: Data, args: argparse.Namespace
) -> list[dict]:
    """BANANAS's predictor, fitted on `n` trained architectures, ranking the others.

    For each split (a random `n` of the architectures "trained": their
    ground-truth validation accuracy; the rest held out), the predictor of
    `BananasOracle` (its ensemble, encoding and, with proxies, its
    standardised proxy features, the oracle's own code) is fitted and ranks
    the held-out architectures. Kendall tau and the pick are on those; the
    cost is the `n` standalone trainings (their measured seconds), plus the
    proxies and the fit.
    """
    from kerasnas.oracles.base import SearchContext

    val = np.array([r["val"] for r in truth])
    seconds = np.array([r["runs"][0]["seconds"] if "runs" in r else r["seconds"] for r in truth])
    decoded = [space.decode(v) for v in archs]
    batch = kn.data.to_dataset(*data["train"], 64)
    rows = []
    # One oracle per set of features: the proxies of all the architectures are computed
    # once (every split's cost counts them all), its predictor is refitted per split.
    oracles, proxy_seconds = {}, 0.0
    for names in [(), tuple(args.predictor_proxies.split("+"))]:
        oracles[names] = kn.oracles.BananasOracle(space, proxy_features=names, seed=0)
        oracles[names].prepare(SearchContext(train=batch, validation=None, directory=""))
        if names:
            start = time.perf_counter()
            oracles[names].proxy_values(decoded)
            proxy_seconds = time.perf_counter() - start
    for n in [int(k) for k in args.predictor_trained.split(",")]:
        for names, oracle in oracles.items():
            taus, rhos, costs, picks = [], [], [], []
            for split in range(args.predictor_splits):
                rng = np.random.default_rng(split)
                order = rng.permutation(len(archs))
                known, held = order[:n], order[n:]
                start = time.perf_counter()
                rows_in = np.stack([oracle.encode(decoded[i]) for i in known])
                inputs = np.stack([oracle.encode(decoded[i]) for i in held])
                if names:
                    rows_in, inputs = oracle.with_proxies(
                        [decoded[i] for i in known], rows_in, [decoded[i] for i in held], inputs
                    )
                targets = (val[known] - val[known].mean()) / (val[known].std() or 1.0)
                oracle.predictor().fit(rows_in, targets, rng)
                predicted = oracle.predictor().predict(inputs).mean(axis=1)
                spent = time.perf_counter() - start + (proxy_seconds if names else 0.0)
                costs.append(seconds[known].sum() + spent)
                taus.append(stats.kendalltau(predicted, val[held]).statistic)
                rhos.append(stats.spearmanr(predicted, val[held]).statistic)
                picks.append(truth[int(held[int(np.argmax(predicted))])]["test"])
            label = "+".join(("paths", *names)) if oracle.encoding == "paths" else "+".join(names)
            rows.append({
                "name": f"bananas[{label}]@{n}", "tau": float(np.mean(taus)),
                "tau_std": float(np.std(taus)), "rho": float(np.mean(rhos)),
                "seconds": float(np.mean(costs)), "ratio": seconds.sum() / np.mean(costs),
                "pick_test": float(np.mean(picks)), "seeds": args.predictor_splits,
                "note": f"fitted on {n} trained, ranks the other {len(archs) - n} (seeds: splits)",
            })  # fmt: skip
            print(f"[predictor {rows[-1]['name']}] tau={rows[-1]['tau']:.3f}", flush=True)
    return rows


def shared_table_rows(n: int, seed: int, stand_in: tuple[np.ndarray, np.ndarray]) -> None:
    """Proxies of `n` architectures of each shared table against the table's accuracies.

    The tables hold CIFAR-10 accuracies (mean over training seeds) of whole
    spaces, so they rank proxies on other spaces and data at no training cost.
    Their images are not here: the proxies' batch is Fashion-MNIST images
    padded to 32x32 and repeated over 3 channels, a stand-in (synflow, params
    and FLOPs read no data).
    """
    from kerasnas.benchmarks import harness

    x, y = stand_in
    x = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)
    found = kn.benchmarks.shared_table_paths()
    if not found:
        print("no shared table found: put the tables in ../shared/data or set "
              "$KERASNAS_SHARED_DATA to their folder", flush=True)  # fmt: skip
    for name, path in sorted(found.items()):
        bench = harness.TableSpec(name, path).load()
        bench.space.configure(input_shape=(32, 32, 3), num_classes=10)
        keys = sorted(bench.table)
        keys = [keys[i] for i in np.random.default_rng(seed).choice(len(keys), n, replace=False)]
        truth = [
            {"val": float(np.mean(bench.table[k]["test_accuracy"])), "test": 0.0} for k in keys
        ]
        archs = [bench.space.encode(bench.space.from_key(k)) for k in keys]
        start = time.perf_counter()
        estimates = proxy_estimates(bench.space, archs, {"train": (x, y)}, seed)
        rows = table(estimates, truth, 1.0)
        taus = " ".join(f"{r['name']}={r['tau']:.3f}" for r in rows)
        print(f"table={name} archs={n} seconds={time.perf_counter() - start:.0f} {taus}",
              flush=True)  # fmt: skip


def table(estimates: list[Estimate], truth: list[dict], standalone_seconds: float) -> list[dict]:
    """One row per estimator: rank correlations, cost, and the network it would pick."""
    val = [r["val"] for r in truth]
    rows = []
    for e in estimates:
        finite = np.nan_to_num(np.asarray(e.scores, dtype=float), nan=-np.inf)
        finite[~np.isfinite(finite)] = np.min(finite[np.isfinite(finite)], initial=0) - 1
        pick = int(np.argmax(finite))
        rows.append({
            "name": e.name, "tau": float(stats.kendalltau(finite, val).statistic),
            "rho": float(stats.spearmanr(finite, val).statistic), "seconds": e.seconds,
            "ratio": standalone_seconds / max(e.seconds, 1e-9), "pick": pick,
            "pick_test": truth[pick]["test"], "note": e.note,
        })  # fmt: skip
    return rows


def mean_rows(rows_by_seed: list[list[dict]]) -> list[dict]:
    """The rows of several seeds averaged (tau, rho, seconds, pick's test accuracy)."""
    out = []
    for same in zip(*rows_by_seed, strict=True):
        row = dict(same[0])
        for key in ("tau", "rho", "seconds", "ratio", "pick_test"):
            row[key] = float(np.mean([r[key] for r in same]))
        row["tau_std"] = float(np.std([r["tau"] for r in same]))
        row["seeds"] = len(same)
        out.append(row)
    return out


def print_table(rows: list[dict], truth: list[dict]) -> None:
    best_test = max(r["test"] for r in truth)
    print(f"{'estimator':22} {'kendall_tau':>11} {'spearman':>8} {'seconds':>8} "
          f"{'cost_ratio':>10} {'pick_test':>9}  note")  # fmt: skip
    for r in rows:
        tau = f"{r['tau']:.3f}" + (f"+-{r['tau_std']:.2f}" if r.get("seeds", 1) > 1 else "")
        print(f"{r['name']:22} {tau:>11} {r['rho']:8.3f} {r['seconds']:8.1f} "
              f"{r['ratio']:10.1f} {r['pick_test']:9.4f}  {r['note']}"
              + (f" (mean of {r['seeds']} seeds)" if r.get("seeds", 1) > 1 else ""))  # fmt: skip
    print(f"(best test accuracy of the {len(truth)}: {best_test:.4f})")


def run_estimators(args: argparse.Namespace) -> None:
    truth_file = read_ground_truth(args.ground_truth)
    data = load_data(SETTINGS)
    space = make_space(SETTINGS, data)
    n = len(truth_file["results"])  # A partial file (a run in progress) ranks what it has.
    archs = [space.values_from_string(a) for a in truth_file["archs"][:n]]
    truth = truth_file["results"]
    standalone = sum(r["runs"][0]["seconds"] if "runs" in r else r["seconds"] for r in truth)
    val, test = [r["val"] for r in truth], [r["test"] for r in truth]
    print(f"ground truth: {args.ground_truth} archs={n} val={min(val):.4f}..{max(val):.4f} "
          f"standalone_seconds={standalone:.0f} (one training each) "
          f"val_vs_test_tau={stats.kendalltau(val, test).statistic:.3f}", flush=True)  # fmt: skip
    wanted = set(args.estimators.split(","))
    rows: list[dict] = []

    def add(kind: str, make: Callable[[int], list[Estimate]], seeds: int, first: int = 0) -> None:
        if kind not in wanted and "all" not in wanted:
            return
        start = time.perf_counter()
        per_seed = []
        for seed in range(first, first + seeds):
            per_seed.append(table(make(seed), truth, standalone))
            taus = " ".join(f"{r['name']}={r['tau']:.3f}" for r in per_seed[-1])
            print(f"[{kind} seed {seed}: {time.perf_counter() - start:.0f}s] {taus}", flush=True)
        rows.extend(mean_rows(per_seed) if seeds > 1 else per_seed[0])
        print(f"[{kind}: {time.perf_counter() - start:.0f}s]", flush=True)

    add("proxies", lambda seed: proxy_estimates(space, archs, data, seed), args.seeds)
    add("short", lambda seed: [training_estimate(
        "short_training", space, archs, data, seed, args.short_epochs, args.short_examples)],
        args.short_seeds)  # fmt: skip
    add("halving", lambda seed: [training_estimate(
        "halving_rung1", space, archs, data, seed, 1, SETTINGS["train_examples"])], 1)  # fmt: skip
    for method in args.supernet_methods.split(","):

        def supernet(seed: int, m: str = method) -> list[Estimate]:
            return supernet_estimate(m, space, archs, data, seed, args)

        add("supernet", supernet, args.supernet_seeds, args.supernet_first_seed)
    if wanted & {"predictor", "all"}:
        rows.extend(predictor_rows(space, archs, truth, data, args))
    print_table(rows, truth)
    if args.table_archs:
        print(f"zero-cost proxies on the shared tables ({args.table_archs} architectures each; "
              "Kendall tau against the table's mean CIFAR-10 accuracy):", flush=True)  # fmt: skip
        shared_table_rows(args.table_archs, 0, (data["train"][0][:256], data["train"][1][:256]))
    by_name = {r["name"]: r for r in rows}
    cheap = [r for r in rows if r["name"] not in ("params", "flops")]
    best = max(cheap, key=lambda r: r["tau"]) if cheap else None
    supernet = by_name.get(f"supernet_{args.supernet_methods.split(',')[0]}")
    nan = {"name": None, "tau": float("nan"), "ratio": float("nan")}
    best, params, supernet = best or nan, by_name.get("params", nan), supernet or nan
    print(
        f"best={best['name']} kendall_tau={best['tau']:.4f} cost_ratio={best['ratio']:.1f} "
        f"params_tau={params['tau']:.4f} supernet_tau={supernet['tau']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ground_truth", default=GROUND_TRUTH)
    parser.add_argument("--train_ground_truth", action="store_true")
    parser.add_argument("--run", type=int, default=0, help="with --train_ground_truth")
    parser.add_argument("--estimators", default="all",
                        help="proxies,short,halving,supernet,predictor or all")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="of the proxies")
    parser.add_argument("--short_seeds", type=int, default=1, help="of short training")
    parser.add_argument("--short_epochs", type=int, default=1)
    parser.add_argument("--short_examples", type=int, default=2000)
    parser.add_argument("--supernet_methods", default="uniform,spos")
    parser.add_argument("--supernet_seeds", type=int, default=5)
    parser.add_argument("--supernet_first_seed", type=int, default=0,
                        help="seeds first..first+seeds-1 (to share them out)")  # fmt: skip
    # 0 (or ""): the library's default (kerasnas.oneshot.methods.run).
    parser.add_argument("--supernet_epochs", type=int, default=0)
    parser.add_argument("--supernet_batch_size", type=int, default=0)
    parser.add_argument("--supernet_learning_rate", type=float, default=0.0)
    parser.add_argument("--supernet_optimizer", default="", choices=("", "adam", "sgd"))
    parser.add_argument("--supernet_val_examples", type=int, default=0,
                        help="validation images the supernet scores on (0: all)")  # fmt: skip
    parser.add_argument("--calibration_batches", type=int, default=10)
    parser.add_argument("--predictor_trained", default="10,20",
                        help="architectures BANANAS's predictor is fitted on")  # fmt: skip
    parser.add_argument("--predictor_proxies", default="naswot+flops",
                        help="its proxy features ('+'-joined), beside one without")  # fmt: skip
    parser.add_argument("--predictor_splits", type=int, default=10)
    parser.add_argument("--table_archs", type=int, default=30,
                        help="architectures per shared table (0: none)")  # fmt: skip
    parser.add_argument("--votes", default="naswot+zico,naswot+flops,naswot+params",
                        help="other proxy sets whose rank vote is shown ('+'-joined)")  # fmt: skip
    args = parser.parse_args()
    VOTES[:] = [tuple(v.split("+")) for v in args.votes.split(",") if v]
    if args.train_ground_truth:
        train_ground_truth(args.ground_truth, args.run)
        return
    run_estimators(args)


if __name__ == "__main__":
    main()
