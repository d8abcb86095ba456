"""Fashion-MNIST, same wall-clock budget each: kerasnas vs keras-tuner vs AutoKeras.

Usage: python benchmarks/fashion_mnist.py [--budget_minutes=60] [--reserve=0.7]
           [--trial_examples=10000] [--trial_epochs=2] [--seed=0] [--directory=DIR]
           [--only=kerasnas,keras_tuner,autokeras] [--space=convnet,nasnet]
           [--prescreen_pool=100] [--keras_tuner_recipe] [--parallel]
           [--limit=N (a smoke test on N images)]

Each contender gets `--budget_minutes` of wall-clock time and ends with one
model evaluated once on the 10,000 test images (the last line prints the
three test accuracies). By default they run one after the other in this
process, on all its cores; with `--parallel` each runs in its own process
pinned to its own core (`os.sched_setaffinity`), as many at once as there
are cores (on 2 cores: kerasnas and keras-tuner together, AutoKeras after),
which halves the wall-clock time of a 2-contender run at one core each.

- kerasnas: the default strategy (random search) over `ConvNetSpace()` (the
  small-image space: 2 stages of 1-3 plain or residual 3x3 convolutions,
  width, head and dropout searched), trials trained on `--trial_examples`
  training images for `--trial_epochs` epochs with a short `kn.Recipe`; the
  search stops starting trials when the `--reserve` share of the budget
  would be touched (`Search(time_budget=, reserve=)`), then `search.retrain`
  trains the best network on all 60,000 training images (train +
  validation) with the final recipe (cosine schedule, label smoothing,
  random translation and horizontal flip) for as many epochs as fit in the
  time left (`retrain(time_budget=...)`: its speed measured on a few steps).
- kerasnas on the NASNet cell space (`--space=nasnet`, or `convnet,nasnet`
  for both; its contender is `kerasnas_nasnet`): `NASNetSpace` sized for a
  CPU core (3 blocks a cell, one cell a stage, 24 filters, a stride-2 stem
  so the cells work at 14x14 and below; 3x3 plain and separable
  convolutions, pooling, identity), searched by the cheap
  evaluation pipeline: `strategy="prescreen"` scores `--prescreen_pool`
  untrained architectures with NASWOT and proposes them best first, and
  successive halving (`kn.Halving(max_epochs=3, min_epochs=1, eta=3)`)
  trains each for one epoch of the trial examples and the best third to
  three; then the same reserve and final training as above.
- keras-tuner: `RandomSearch` over a typical hand-written CNN space (1-3
  conv blocks of two 3x3 convolutions, filters, batch norm, dropout, dense
  units, learning rate), trials on the same examples and epochs, stopped by
  the same rule; the best hyperparameters are then trained on train +
  validation for the epochs the time left allows, its speed measured on a
  few steps as kerasnas's is (Adam at the searched rate, no augmentation,
  as a keras-tuner user would). With `--keras_tuner_recipe` the same
  network is then trained again for the same time with kerasnas's final
  recipe (contender `keras_tuner_recipe`, outside keras-tuner's budget): the
  table then separates what a search found from what the recipe adds.
- AutoKeras: `ak.ImageClassifier` on the same examples and epochs, when
  `autokeras` is installed (else `nan`); after 85 % of the budget no new
  trial starts and the running one stops, then AutoKeras's own final fit
  trains the best model (on the trial examples + validation, for the best
  trial's epochs; stopped when the budget is spent) and its `evaluate`
  gives the test accuracy. Offline, its ImageNet-pretrained
  EfficientNet trials fail (no weights to download) and are skipped.
  AutoKeras 3.0.0 needs a one-line shim on Keras 3.15 (see
  `_patch_autokeras_head`).

Fashion-MNIST comes from Debian's dataset-fashion-mnist files when present
(`kn.data.load("fashion_mnist")`), else through tensorflow-datasets.

Last line: `<contender>=<test accuracy> ... budget_min=<M>`, one per contender
run (e.g. `kerasnas=<acc> keras_tuner=<acc> autokeras=<acc or nan>`).
"""

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.training import (  # noqa: E402
    epochs_within,
    fit_within,
    measure_step_seconds,
    steps_per_epoch,
)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# The NASNet cell space sized for one CPU core: 3 blocks a cell, one cell a stage, 24
# filters, a stride-2 stem (the cells at 14x14, 7x7 and 4x4: a step about half as long as
# 16 filters at 28x28, which left the final training 7 epochs in run E), plain 3x3
# convolutions beside one separable convolution (NASNet's separable convolutions run
# slowly on a CPU), pooling and identity.
NASNET_OPS = ("conv_3x3", "sep_conv_3x3", "avg_pool_3x3", "max_pool_3x3", "identity")


def final_recipe(args: argparse.Namespace) -> kn.Recipe:
    """kerasnas's final recipe (cosine schedule, label smoothing, translation and flips)."""
    return kn.Recipe(epochs=args.trial_epochs, batch_size=128, learning_rate=3e-3,
                     translate=0.1, flip=True, label_smoothing=0.1)  # fmt: skip


def kerasnas_search(space_name: str, args: argparse.Namespace, budget: float, directory: str):
    """The `kn.Search` of one kerasnas contender (see the module's documentation)."""
    trial_recipe = kn.Recipe(epochs=args.trial_epochs, batch_size=128, learning_rate=3e-3)
    common = dict(
        max_trials=1000, seed=args.seed, directory=directory, overwrite=True,
        time_budget=budget, reserve=args.reserve * budget, recipe=trial_recipe,
    )  # fmt: skip
    if space_name == "convnet":
        return kn.Search(kn.spaces.ConvNetSpace(), project_name="kerasnas", **common)
    space = kn.spaces.NASNetSpace(
        num_blocks=3, num_cells=1, filters=24, stem_strides=2, ops=NASNET_OPS
    )
    return kn.Search(
        space, "prescreen", pool_size=args.prescreen_pool, project_name=f"kerasnas_{space_name}",
        halving=kn.Halving(max_epochs=3, min_epochs=1, eta=3), **common,
    )  # fmt: skip


def run_kerasnas(data, args, directory: str, space_name: str = "convnet") -> dict[str, float]:
    (x, y), (xv, yv), (xt, yt) = data
    name = contender_name(space_name)
    start = time.perf_counter()
    budget = args.budget_minutes * 60
    search = kerasnas_search(space_name, args, budget, directory)
    sub = slice(0, args.trial_examples)
    search.fit(x[sub], y[sub], validation_data=(xv, yv))
    done = search.completed_trials()
    best = search.best_trials(1)[0]
    left = search.time_left()
    arch = search.best_architectures(1)[0]
    log(f"{name}: {len(done)} trials; best val_accuracy {best.score:.4f} "
        f"{arch.choices or arch.to_json()}")  # fmt: skip
    log(f"{name}: final training in the {left:.0f}s left")
    # As many epochs as fit in what is left (its speed measured on a few steps), less
    # a margin for the test pass.
    model = search.retrain(x, y, (xv, yv), recipe=final_recipe(args), time_budget=left - 20)
    _, acc = model.evaluate(xt, yt, verbose=0)
    log(f"{name}: test accuracy {acc:.4f} after {time.perf_counter() - start:.0f}s")
    return {name: float(acc)}


def contender_name(space_name: str) -> str:
    return "kerasnas" if space_name == "convnet" else f"kerasnas_{space_name}"


def cnn(hp: keras_tuner.HyperParameters) -> keras.Model:
    """A typical hand-written Keras CNN search space."""
    inputs = keras.Input((28, 28, 1))
    x = inputs
    batch_norm = hp.Boolean("batch_norm")
    for i in range(hp.Int("blocks", 1, 3)):
        filters = hp.Choice(f"filters_{i}", [32, 64, 128])
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)(x)
            if batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Dropout(hp.Float(f"dropout_{i}", 0.0, 0.4, step=0.1))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(hp.Choice("dense", [64, 128, 256]), activation="relu")(x)
    x = keras.layers.Dropout(hp.Float("dropout_dense", 0.0, 0.5, step=0.1))(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run_keras_tuner(data, args, directory: str) -> dict[str, float]:
    (x, y), (xv, yv), (xt, yt) = data
    start = time.perf_counter()
    budget = args.budget_minutes * 60
    deadline = start + (1 - args.reserve) * budget
    # keras-tuner's oracles draw a random seed when given 0 (`seed or random.randint(...)`),
    # so the peers get `--seed` + 1: reproducible for every `--seed`.
    tuner = keras_tuner.RandomSearch(
        cnn, objective="val_accuracy", max_trials=1, seed=args.seed + 1, directory=directory,
        project_name="keras_tuner", overwrite=True,
    )  # fmt: skip
    sub = slice(0, args.trial_examples)
    longest, trials = 0.0, 0
    while time.perf_counter() + longest <= deadline:  # The same stopping rule as kerasnas.
        tuner.oracle.max_trials = trials + 1
        began = time.perf_counter()
        tuner.search(x[sub], y[sub], validation_data=(xv, yv), epochs=args.trial_epochs,
                     batch_size=128, verbose=0)  # fmt: skip
        took = time.perf_counter() - began
        longest = max(longest, took)
        trials += 1
        best = tuner.oracle.get_best_trials(1)[0]
        log(f"keras_tuner: trial {trials} took {took:.0f}s, best val_accuracy {best.score:.4f}")
    hp = tuner.get_best_hyperparameters(1)[0]
    log(f"keras_tuner: best {hp.values}")
    images = kn.data.to_dataset(np.concatenate([x, xv]), np.concatenate([y, yv]), 128,
                                shuffle=True, seed=args.seed)  # fmt: skip
    left = budget - (time.perf_counter() - start) - 20  # 20 s for the test pass, as kerasnas
    scores = {"keras_tuner": final_training("keras_tuner", hp, images, None, left, (xt, yt), args)}
    log(f"keras_tuner: test accuracy {scores['keras_tuner']:.4f} after "
        f"{time.perf_counter() - start:.0f}s")  # fmt: skip
    if args.keras_tuner_recipe:
        # The same network given the same time again, with kerasnas's final recipe: what the
        # recipe adds, apart from what the search found (outside the contender's budget).
        scores["keras_tuner_recipe"] = final_training(
            "keras_tuner_recipe", hp, images, final_recipe(args), left, (xt, yt), args
        )
    return scores


def final_training(name, hp, images, recipe, seconds: float, test, args) -> float:
    """Trains `cnn(hp)` from scratch for the epochs that fit in `seconds`; its test accuracy.

    The epochs: as many as fit at the speed measured on a few steps of a
    throwaway copy, re-planned after each epoch from the epochs' times: the
    rule `Search.retrain(time_budget=)` follows. Without a `recipe`, as a
    keras-tuner user would: Adam at the searched rate, constant, no
    augmentation; with one, its optimizer, schedule, loss and augmentation.
    """
    began = time.perf_counter()
    steps = steps_per_epoch(images)
    train = images if recipe is None else recipe.augment(images, seed=args.seed)

    def model(epochs: int) -> keras.Model:
        built = cnn(hp)
        return built if recipe is None else recipe.replace(epochs=epochs).compile(built, steps)

    step_s, first_s = measure_step_seconds(model(1), train)
    epochs = epochs_within(seconds - (time.perf_counter() - began), step_s, steps, first_s)
    took = time.perf_counter() - began
    log(f"{name}: final training {epochs} epochs in {seconds:.0f}s "
        f"({step_s * 1000:.0f} ms a step, measured in {took:.0f}s)")  # fmt: skip
    keras.utils.set_random_seed(args.seed)
    final = model(epochs)
    epochs = fit_within(final, train, epochs, began + seconds)
    _, acc = final.evaluate(*test, verbose=0)
    log(f"{name}: trained {epochs} epochs; test accuracy {acc:.4f}")
    return float(acc)


class _StopSearchAt(keras.callbacks.Callback):
    """Ends AutoKeras's search at a deadline: the trial running then is its last.

    Past the deadline `stop()` caps the oracle's `max_trials` at the trials
    created so far (keras-tuner then starts no new one) and returns True
    while a trial is running; that trial's training then stops at that batch
    (its score is what it reached), so AutoKeras goes on to its own final
    fit, which gets the same callbacks but runs with no trial open: it is
    stopped only when the whole budget is spent. Keras still validates a
    stopped epoch; past the deadline that pass ends after `eval_batches`
    batches (its score is their accuracy: a ResNet50 trial's full pass over
    10,000 images took 16 minutes of one core). keras-tuner deep-copies
    callbacks for every trial; `stop`, a function, is shared by the copies
    rather than copied.
    """

    def __init__(self, stop, eval_batches: int = 20):
        super().__init__()
        self.stop, self.eval_batches = stop, eval_batches

    def on_train_batch_begin(self, batch, logs=None):
        if self.stop():
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        if batch + 1 >= self.eval_batches and self.stop():
            self.model.stop_evaluating = True


def _patch_autokeras_head(head_class: type) -> None:
    """AutoKeras 3.0.0's classification head passes its class count to `Dense`
    as a numpy integer, which recent Keras (3.15) refuses ("expected a positive
    integer. Received: units=10"); the head's shape is made plain ints first."""
    build = head_class.build
    if getattr(build, "_plain_shape", False):
        return

    @functools.wraps(build)
    def plain_shape_build(self, hp, inputs=None):
        if self.shape is not None:
            self.shape = tuple(int(d) for d in self.shape)
        return build(self, hp, inputs)

    plain_shape_build._plain_shape = True
    head_class.build = plain_shape_build


def run_autokeras(data, args, directory: str) -> float:
    try:
        import autokeras as ak
        from autokeras.blocks import heads
    except ImportError:
        log("autokeras: not installed (pip install autokeras); nan")
        return {"autokeras": math.nan}
    _patch_autokeras_head(heads.ClassificationHead)
    (x, y), (xv, yv), (xt, yt) = data
    start = time.perf_counter()
    budget = args.budget_minutes * 60
    # Its default image space also tries ImageNet-pretrained EfficientNets, whose weights
    # need the network; offline those trials fail, so more than 3 failures in a row are allowed.
    clf = ak.ImageClassifier(max_trials=1000, seed=args.seed + 1, directory=directory,
                             project_name="autokeras", overwrite=True)  # fmt: skip
    clf.tuner.oracle.max_consecutive_failed_trials = 20  # Not a tuner argument.
    # AutoKeras's own final fit (after the search, on train + validation for the best
    # trial's epochs) is short at trial scale: its search may use 85 % of the budget.
    # Its final fit may take longer (a large network's): it is stopped at the budget's end.
    deadline, end = start + 0.85 * budget, start + budget - 20  # 20 s for the test pass.

    def stop() -> bool:
        oracle = clf.tuner.oracle
        now = time.perf_counter()
        if now <= deadline:
            return False
        if oracle.max_trials > len(oracle.trials):
            oracle.max_trials = len(oracle.trials)
            log(f"autokeras: deadline reached; trial {len(oracle.trials)} is the last")
        if oracle.ongoing_trials:  # Empty during the final fit.
            return True
        if now > end:
            log("autokeras: the budget is spent; its final fit stops here")
            return True
        return False

    sub = slice(0, args.trial_examples)
    clf.fit(x[sub], y[sub], validation_data=(xv, yv), epochs=args.trial_epochs,
            callbacks=[_StopSearchAt(stop)], verbose=0)  # fmt: skip
    done = [t for t in clf.tuner.oracle.trials.values() if t.status == "COMPLETED"]
    log(f"autokeras: {len(done)} trials completed of {len(clf.tuner.oracle.trials)}")
    # AutoKeras encodes the labels itself (its exported model expects one-hot targets).
    _, acc = clf.evaluate(xt, yt, verbose=0)[:2]
    log(f"autokeras: test accuracy {acc:.4f} after {time.perf_counter() - start:.0f}s")
    return {"autokeras": float(acc)}


def run_parallel(args: argparse.Namespace, chosen: list[str], directory: str) -> dict:
    """Runs each contender in its own process pinned to its own core; their test accuracies.

    As many run at once as this process may use cores; the others wait for a
    free core. Their output lines interleave (each line names its contender).
    """
    cores = sorted(os.sched_getaffinity(0))
    log(f"parallel: {len(chosen)} contenders on cores {cores}, one core each")
    waiting, running, scores = list(chosen), {}, {}
    while waiting or running:
        while waiting and len(running) < len(cores):
            name = waiting.pop(0)
            core = next(c for c in cores if c not in {c2 for _, c2, _ in running.values()})
            result = os.path.join(directory, f"{name}.json")
            argv = [sys.executable, os.path.abspath(__file__), f"--only={name}",
                    f"--result_json={result}", f"--directory={directory}",
                    *(f"--{k}" if v is True else f"--{k}={v}" for k, v in vars(args).items()
                      if k not in ("only", "parallel", "result_json", "directory")
                      and v is not False)]  # fmt: skip
            pin = functools.partial(os.sched_setaffinity, 0, {core})
            proc = subprocess.Popen(argv, preexec_fn=pin)
            log(f"parallel: {name} started on core {core} (pid {proc.pid})")
            running[name] = (proc, core, result)
        time.sleep(1)
        for name, (proc, _, result) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                log(f"parallel: {name} failed (exit status {proc.returncode}); nan")
                scores[name] = math.nan
            else:
                with open(result) as f:
                    scores.update(json.load(f))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget_minutes", type=float, default=60.0)
    parser.add_argument("--reserve", type=float, default=0.7,
                        help="share of the budget kept for the final training")  # fmt: skip
    parser.add_argument("--trial_examples", type=int, default=10_000)
    parser.add_argument("--trial_epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--directory", default=None)
    parser.add_argument("--only", default="kerasnas,keras_tuner,autokeras")
    parser.add_argument("--space", default="convnet",
                        help="kerasnas's space(s), comma-separated: convnet, nasnet")  # fmt: skip
    parser.add_argument("--prescreen_pool", type=int, default=100,
                        help="architectures the NASNet search scores with NASWOT")  # fmt: skip
    parser.add_argument("--keras_tuner_recipe", action="store_true",
                        help="retrain keras-tuner's best with kerasnas's recipe too")  # fmt: skip
    parser.add_argument("--parallel", action="store_true",
                        help="run the contenders at once, each pinned to its own core")  # fmt: skip
    parser.add_argument("--result_json", default="", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0,
                        help="smoke test: keep only this many train/val/test images")  # fmt: skip
    args = parser.parse_args()
    if not 0 < args.reserve < 1:
        parser.error("--reserve must lie in (0, 1)")
    spaces = args.space.split(",")
    if not set(spaces) <= {"convnet", "nasnet"}:
        parser.error(f"--space: choose among convnet, nasnet. Received: {args.space!r}")
    data = kn.data.load("fashion_mnist")
    if args.limit:
        data = tuple((a[: args.limit], b[: args.limit]) for a, b in data)
    (x, _), (xv, _), (xt, _) = data
    log(f"Fashion-MNIST: {len(x)} train, {len(xv)} validation, {len(xt)} test; "
        f"budget {args.budget_minutes:g} min each")  # fmt: skip
    directory = args.directory or tempfile.mkdtemp(prefix="fashion_bench_")
    runs = {contender_name(s): functools.partial(run_kerasnas, space_name=s) for s in spaces}
    runs.update(keras_tuner=run_keras_tuner, autokeras=run_autokeras)
    # "kerasnas" in --only names every kerasnas contender (one per --space).
    chosen = [n for n in runs for o in args.only.split(",")
              if o == n or (o == "kerasnas" and n.startswith("kerasnas"))]  # fmt: skip
    unknown = sorted(set(args.only.split(",")) - set(runs) - {"kerasnas"})
    if unknown:
        parser.error(f"--only: unknown contender(s) {unknown}; choose among {sorted(runs)}")
    if args.parallel:
        done = run_parallel(args, chosen, directory)
    else:
        done = {}
        for name in chosen:
            done.update(runs[name](data, args, directory))
    if args.result_json:
        with open(args.result_json, "w") as f:
            json.dump(done, f)
    names = [*chosen, *(["keras_tuner_recipe"] if "keras_tuner_recipe" in done else [])]
    print(" ".join(f"{n}={done.get(n, math.nan):.4f}" for n in names),
          f"budget_min={args.budget_minutes:g}")  # fmt: skip


if __name__ == "__main__":
    main()
