"""Keras's other backends: the smoke run (`tests/backend_smoke.py`) under JAX and PyTorch.

The backend is chosen when keras is first imported, so each runs in a process of its
own. This process (TensorFlow) first searches a project and exports a model, which the
other backend resumes and loads; it then loads the model the other backend exported.
Skipped where the backend's package is not installed (`jax[cpu]` is in the test extra;
`make test` installs a CPU build of torch where one installs quickly, `make backends`).
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasnas as kn
from tests import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tensorflow_project(workdir) -> None:
    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    search = kn.Search(tiny.fast_space(), max_trials=2, seed=0, verbose=0,
                       directory=workdir, project_name="tf_project")  # fmt: skip
    search.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=32)
    path = search.export(os.path.join(workdir, "tensorflow.keras"))
    predictions = keras.models.load_model(path).predict(xv, verbose=0)
    np.save(os.path.join(workdir, "tensorflow_predictions.npy"), predictions)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_search_runs_resumes_and_exports_under_another_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    tensorflow_project(tmp_path)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "backend_smoke.py"), str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads((tmp_path / "smoke.json").read_text())
    assert found["backend"] == backend
    # Every space builds and trains a step to finite numbers.
    assert sorted(found["spaces"]) == sorted(kn.spaces.SPACES)
    for name, metrics in found["spaces"].items():
        assert all(np.isfinite(v) for v in metrics.values()), (name, metrics)
    # The TensorFlow project resumed: its third trial trained here.
    assert found["tf_project_trials"] == ["COMPLETED"] * 3
    assert found["tf_export_error"] < 1e-4
    # The file it exported loads here and predicts as it did there.
    model = keras.models.load_model(tmp_path / f"{backend}.keras")
    (_, _), (xv, _) = tiny.digits(train=64, val=32)
    expected = np.load(tmp_path / f"{backend}_predictions.npy")
    np.testing.assert_allclose(model.predict(xv, verbose=0), expected, atol=1e-4)
    # The controller proposes and learns: 1/729 at first, most of the mass after 50 updates.
    assert found["controller_start"] < 0.01
    assert found["controller_updates"] == 50
    assert found["controller_end"] > 0.5
    assert found["controller_logp_gap"] < 1e-4
    # What stays TensorFlow-only refuses at construction, naming the backend and the fix.
    for name, message in found["refusals"].items():
        assert message is not None, f"{name} was not refused under {backend}"
        assert f"KERAS_BACKEND={backend}" in message and "KERAS_BACKEND=tensorflow" in message
