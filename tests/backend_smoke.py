"""The backend smoke run: `tests/backends_test.py` runs this file under KERAS_BACKEND=jax / torch.

`python tests/backend_smoke.py WORKDIR` (from the repository root) checks, in a process
whose Keras runs on another backend than TensorFlow:

- every registered space builds and trains (one step);
- a project that the TensorFlow process searched (`WORKDIR/tf_project`) resumes here (its
  third trial trains and is stored here) and exports, and the `.keras` file it exported
  loads and predicts as it did there;
- the controller's policy proposes, and learns (50 updates on a synthetic objective
  concentrate it on the best architecture), and its log-probabilities agree;
- what stays TensorFlow-only refuses with one line at construction.

It writes `WORKDIR/smoke.json` (what it found) and exports `WORKDIR/<backend>.keras` with
`WORKDIR/<backend>_predictions.npy`, which the TensorFlow process loads back.
"""

import json
import os
import sys

import keras
import numpy as np

import kerasnas as kn
from tests import tiny

SMALL_SPACES = {
    "nasnet": lambda: tiny.fast_space(),
    "convnet": lambda: kn.spaces.ConvNetSpace(widths=(8,), depths=(1,), dense_units=16),
    "macro": lambda: kn.spaces.MacroSpace(stages=(1, 1, 1), init_channels=8, head_channels=16),
    "nasbench101": lambda: kn.spaces.NASBench101Space(
        stem_filters=8, num_stacks=1, cells_per_stack=1
    ),
    "nasbench201": lambda: kn.spaces.NASBench201Space(stem_filters=8, cells_per_stage=1),
    "rnn": lambda: kn.spaces.RNNCellSpace(num_nodes=3, units=8),
}


def text_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.random.default_rng(0).integers(0, 12, (n, 8))
    return tokens, np.roll(tokens, -1, axis=1)


def spaces_train(found: dict) -> None:
    (x, y), _ = tiny.digits(train=32, val=8)
    for name in kn.spaces.SPACES:
        space = SMALL_SPACES[name]()
        data = text_data(32) if name == "rnn" else (x, y)
        num_classes = 12 if name == "rnn" else 10
        space.num_classes, space.input_shape = num_classes, data[0].shape[1:]
        model = space.build(space.sample(np.random.default_rng(0)))
        found["spaces"][name] = model.train_on_batch(*data, return_dict=True)


def resume_and_export(workdir: str, found: dict) -> None:
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    # The project the TensorFlow process searched (2 trials): its third trial trains here.
    search = kn.Search(tiny.fast_space(), max_trials=3, seed=0, verbose=0,
                       directory=workdir, project_name="tf_project")  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=32)
    found["tf_project_trials"] = [r["status"] for r in search.results()]
    backend = keras.backend.backend()
    path = search.export(os.path.join(workdir, f"{backend}.keras"))
    predictions = keras.models.load_model(path).predict(xv, verbose=0)
    np.save(os.path.join(workdir, f"{backend}_predictions.npy"), predictions)
    # The file the TensorFlow process exported, with its predictions there.
    model = keras.models.load_model(os.path.join(workdir, "tensorflow.keras"))
    expected = np.load(os.path.join(workdir, "tensorflow_predictions.npy"))
    found["tf_export_error"] = float(np.abs(model.predict(xv, verbose=0) - expected).max())


def controller_learns(found: dict) -> None:
    space = kn.spaces.MacroSpace(stages=(2, 2, 2))
    best = space.from_key("201201")
    target = space.encode(best)
    oracle = kn.oracles.ControllerOracle(space, seed=0, max_trials=10)
    rng = np.random.default_rng(0)
    found["controller_start"] = float(np.exp(oracle.log_prob([best])[0]))
    gaps = []
    for _ in range(50 * oracle.batch_size):
        choices, logp = oracle.controller.sample(rng)
        values = oracle._values(choices)
        forced = float(oracle.log_prob([space.decode(values)])[0])
        gaps.append(abs(forced - logp))
        oracle._add_sample(choices, logp, sum(values[k] == target.get(k) for k in values) / 6)
    found["controller_updates"] = oracle.updates
    found["controller_end"] = float(np.exp(oracle.log_prob([best])[0]))
    found["controller_logp_gap"] = max(gaps)


def refusals(found: dict) -> None:
    attempts = {
        "darts": lambda: kn.Search(tiny.space(), strategy="darts"),
        "prescreen_synflow": lambda: kn.Search(tiny.space(), strategy="prescreen", proxy="synflow"),
        "prescreen_vote": lambda: kn.Search(tiny.space(), strategy="prescreen", proxy="vote"),
        "distribution_strategy": lambda: kn.Search(tiny.space(), distribution_strategy=object()),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            found["refusals"][name] = None
        except ValueError as e:
            found["refusals"][name] = str(e)


def main(workdir: str) -> None:
    found = {"backend": keras.backend.backend(), "spaces": {}, "refusals": {}}
    spaces_train(found)
    resume_and_export(workdir, found)
    controller_learns(found)
    refusals(found)
    with open(os.path.join(workdir, "smoke.json"), "w") as f:
        json.dump(found, f)


if __name__ == "__main__":
    main(sys.argv[1])
