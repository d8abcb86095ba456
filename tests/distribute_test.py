"""Trials under tf.distribute strategies, mixed precision and XLA."""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import pytest

import kerasnas as kn
from tests import tiny

MIRRORED = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    import kerasnas as kn

    class Report(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            strategy = self.model.distribute_strategy
            variable = self.model.trainable_weights[0]
            print("REPLICAS", strategy.num_replicas_in_sync, type(strategy).__name__,
                  type(variable.value).__name__, flush=True)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(num_blocks=1, num_cells=1, num_reductions=1, filters=8,
                                  ops=["max_pool_3x3", "identity", "conv_1x1"])
    search = kn.Search(space, max_trials=2, seed=0, directory=sys.argv[1],
                       distribution_strategy=strategy)
    search.fit(x[:128], y[:128], validation_data=(xv[:64], yv[:64]), epochs=1, batch_size=64,
               callbacks=[Report()])
    results = search.results()
    print("STATUSES", [r["status"] for r in results])
    model = search.best_model()
    print("BEST", type(model.trainable_weights[0].value).__name__,
          round(model.evaluate(xv, yv, verbose=0)[1], 4), round(results[0]["score"], 4))
    """
)


def test_trials_train_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    reports = [line for line in lines if line.startswith("REPLICAS")]
    assert len(reports) == 2
    assert all(line.split()[1:3] == ["2", "MirroredStrategy"] for line in reports)
    assert all("Mirrored" in line.split()[3] for line in reports)  # Mirrored variables.
    assert "STATUSES ['COMPLETED', 'COMPLETED']" in run.stdout
    best = next(line for line in lines if line.startswith("BEST")).split()
    assert "Mirrored" in best[1]  # best_model() restores under the strategy too.


def test_mixed_precision_and_jit_compile_trials(tmp_path):
    (x, y), (xv, yv) = tiny.digits(train=128, val=64)

    class Inspect(keras.callbacks.Callback):
        seen = []

        def on_train_begin(self, logs=None):
            conv = next(layer for layer in self.model.layers if layer.weights)
            Inspect.seen.append((conv.dtype_policy.name, self.model.jit_compile))

    search = kn.Search(
        tiny.fast_space(),
        max_trials=1,
        seed=0,
        directory=str(tmp_path),
        mixed_precision=True,
        jit_compile=True,
        verbose=0,
    )
    search.fit(x, y, validation_data=(xv, yv), epochs=1, callbacks=[Inspect()])
    assert search.results()[0]["status"] == "COMPLETED"
    assert Inspect.seen == [("mixed_float16", True)]
    assert keras.config.dtype_policy().name == "float32"  # The global policy is restored.
    assert search.best_model().outputs[0].dtype == "float32"  # Float32 softmax.


@pytest.mark.parametrize("role", ["chief", "worker"])
def test_role_environment(role):
    env = kn.distributed.role_env(role, "127.0.0.1", 8000, 3)
    assert env["KERASTUNER_ORACLE_IP"] == "127.0.0.1" and env["KERASTUNER_ORACLE_PORT"] == "8000"
    assert env["KERASTUNER_TUNER_ID"] == ("chief" if role == "chief" else "tuner3")
    with pytest.raises(ValueError, match="role must be"):
        kn.distributed.role_env("boss", "127.0.0.1", 1)


# A chief that listens and never ends; workers that exit at once or never end.
FAKE_SEARCH = textwrap.dedent(
    """
    import os, socket, sys, time
    open(os.path.join(sys.argv[2], str(os.getpid())), "w").close()
    if os.environ["KERASTUNER_TUNER_ID"] == "chief":
        server = socket.create_server(("127.0.0.1", int(os.environ["KERASTUNER_ORACLE_PORT"])))
        time.sleep(600)
    elif sys.argv[1] == "crash":
        sys.exit(3)
    else:
        time.sleep(600)
    """
)


def test_launch_stops_a_chief_that_no_worker_is_left_to_serve(tmp_path, capfd):
    start = time.monotonic()
    status = kn.distributed.launch(
        [sys.executable, "-c", FAKE_SEARCH, "crash", str(tmp_path)], num_workers=2, orphan_grace=1
    )
    assert status == 1 and time.monotonic() - start < 60
    err = capfd.readouterr().err
    assert "worker 0 exited with status 3" in err and "worker 1 exited with status 3" in err
    assert "every worker has exited (statuses [3, 3])" in err and "stopping the chief" in err


def test_launch_timeout_stops_every_process(tmp_path):
    with pytest.raises(TimeoutError, match="did not finish within its timeout"):
        kn.distributed.launch(
            [sys.executable, "-c", FAKE_SEARCH, "hang", str(tmp_path)], num_workers=2, timeout=5
        )
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 3  # The chief and two workers started, and all were stopped:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


MULTI_WORKER = textwrap.dedent(
    """
    import tensorflow as tf
    import kerasnas as kn
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # A cluster of 2 (TF_CONFIG).
    try:
        kn.Search(kn.spaces.ChainSpace(), distribution_strategy=strategy)
    except ValueError as e:
        print("REFUSED", e)
    """
)


def test_a_multi_worker_strategy_is_refused_with_the_reason():
    workers = [f"127.0.0.1:{kn.distributed.free_port()}" for _ in range(2)]
    runs = []
    for index in range(2):  # The strategy waits for its whole cluster.
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", MULTI_WORKER],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={
                    **os.environ,
                    "TF_CPP_MIN_LOG_LEVEL": "3",
                    "CUDA_VISIBLE_DEVICES": "",
                    "TF_CONFIG": json.dumps(config),
                },  # fmt: skip
            )
        )
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert "REFUSED Keras 3 cannot train a model under a MultiWorkerMirroredStrategy" in (
            out
        ), err[-3000:]
        assert "keras-team/keras#20585" in out and "chief/worker" in out
