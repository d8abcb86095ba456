"""Trial overhead: the same architecture trained by plain Keras, by kerasnas, by keras-tuner.

Usage: python benchmarks/trial_overhead.py [--epochs=5] [--rounds=4]

Trains one NASNet-space architecture on digits for the same epochs, with the
same data and batch size, (a) with plain `model.fit` on the arrays (build and
compile included), (b) with plain `model.fit` on kerasnas's input pipeline
(`kerasnas.data.pipeline.to_dataset`, what a search trains on), (c) as a
one-trial `kerasnas.Search`, and (d) as a one-trial keras-tuner `RandomSearch`,
interleaved for `--rounds` rounds in this process (the order rotating). Prints
the median seconds of each; the last line is `overhead_ratio=<kerasnas/plain>
pipeline_ratio=<kerasnas/plain on the pipeline> keras_tuner_ratio=<keras-tuner/plain>`
(target for kerasnas: at most 1.10 on 5-epoch digits trials). The pipeline
ratio is the search's own work per trial; the overhead ratio adds what
kerasnas's pipeline saves or costs against Keras's handling of arrays.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

import kerasnas as kn  # noqa: E402
from kerasnas.data.pipeline import to_dataset  # noqa: E402


class FixedOracle(kn.oracles.NasOracle):
    """Proposes one given architecture."""

    def __init__(self, space, arch, **kwargs):
        super().__init__(space, **kwargs)
        self.arch = arch

    def populate_space(self, trial_id):
        return self.propose(self.arch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(num_classes=10, input_shape=(8, 8, 1))
    arch = space.sample(np.random.default_rng(0))
    fit = dict(validation_data=(xv, yv), epochs=args.epochs, batch_size=32, verbose=0)

    def plain():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        model = space.build(arch)
        model.fit(x, y, **fit)
        return time.perf_counter() - start

    def plain_pipeline():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        model = space.build(arch)
        train = to_dataset(x, y, 32, shuffle=True, seed=0)
        model.fit(train, validation_data=to_dataset(xv, yv, 32), epochs=args.epochs, verbose=0)
        return time.perf_counter() - start

    def kerasnas_trial():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            oracle = FixedOracle(space, arch, max_trials=1, seed=0)
            kn.Search(space, oracle, directory=tmp, verbose=0).fit(x, y, **fit)
            return time.perf_counter() - start

    def keras_tuner_trial():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            tuner = keras_tuner.RandomSearch(
                hypermodel=lambda hp: space.build(arch),
                objective="val_accuracy",
                max_trials=1,
                directory=tmp,
                project_name="kt",
            )
            tuner.search(x, y, **fit)
            return time.perf_counter() - start

    runners = {
        "plain": plain,
        "plain_pipeline": plain_pipeline,
        "kerasnas": kerasnas_trial,
        "keras_tuner": keras_tuner_trial,
    }
    times = {name: [] for name in runners}
    plain()  # Warm-up: the first graph tracing of the process is slower.
    names = list(runners)
    for r in range(args.rounds):
        # The order rotates each round: a process's runs slow down as its heap grows.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(runners[name]())
            print(f"round {r + 1} {name}: {times[name][-1]:.2f}s", flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(" ".join(f"{name}_median={m:.2f}s" for name, m in med.items()))
    print(
        f"overhead_ratio={med['kerasnas'] / med['plain']:.3f} "
        f"pipeline_ratio={med['kerasnas'] / med['plain_pipeline']:.3f} "
        f"keras_tuner_ratio={med['keras_tuner'] / med['plain']:.3f}"
    )


if __name__ == "__main__":
    main()
