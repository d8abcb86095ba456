"""Crash safety and parallel trials, tested with real processes and real kills."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import kerasnas as kn
from kerasnas import _io, distributed
from kerasnas import plan as plan_module

# A search script. Its trials are small (one block, no separable convolutions, 128
# examples) and run eagerly: what is tested is the processes, not the training. Two
# hooks, set through the environment, make the tests wait for events instead of wall time:
#   HOLD=<k>:<file>  the process's training number k (0 = its first) writes <file> after
#                    its first batch, then waits there to be killed: a kill mid-trial.
#   MEET=<n>:<dir>   the process's first training waits until n processes have begun
#                    training: every worker of a parallel search gets a trial.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    import kerasnas as kn

    tf.config.run_functions_eagerly(True)  # No tracing: the processes are tested, not graphs.
    directory, project, max_trials, epochs, strategy = sys.argv[1:6]
    hold, meet = os.environ.get("HOLD"), os.environ.get("MEET")

    class Hooks(keras.callbacks.Callback):
        trainings = 0  # Of this process (keras-tuner copies the callbacks per trial).

        def on_train_begin(self, logs=None):
            self.number = Hooks.trainings
            Hooks.trainings += 1
            if meet and self.number == 0:
                count, folder = meet.split(":", 1)
                open(os.path.join(folder, str(os.getpid())), "w").close()
                deadline = time.monotonic() + 600
                while len(os.listdir(folder)) < int(count) and time.monotonic() < deadline:
                    time.sleep(0.05)

        def on_train_batch_end(self, batch, logs=None):
            if hold and batch == 0 and self.number == int(hold.split(":", 1)[0]):
                open(hold.split(":", 1)[1], "w").close()
                time.sleep(3600)  # Until the test kills this process.

    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(num_blocks=1, num_cells=1, num_reductions=1, filters=8,
                                  ops=["max_pool_3x3", "identity", "conv_1x1"])
    strategy, _, halving = strategy.partition("+")  # "random+halving": 2 rungs of 1 epoch.
    halving = kn.Halving(max_epochs=2, eta=2) if halving else None
    search = kn.Search(space, strategy, max_trials=int(max_trials), seed=0, halving=halving,
                       directory=directory, project_name=project)
    search.fit(x[:128], y[:128], validation_data=(xv[:64], yv[:64]), epochs=int(epochs),
               callbacks=[Hooks()])
    """
)


def env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **extra}


def statuses(project_dir):
    out = {}
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                state = json.load(f)
            out[state["trial_id"]] = (state["status"], state["hyperparameters"]["values"])
    return out


def wait_for(condition, timeout, what, *procs):
    """Polls `condition`; fails when it times out or one of `procs` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a process exited ({proc.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "search.py"
    path.write_text(SCRIPT)
    return str(path)


def test_sigkill_mid_trial_then_resume(tmp_path, script):
    args = [sys.executable, script, str(tmp_path), "crash", "3", "1", "controller"]
    project = tmp_path / "crash"
    held = tmp_path / "held"
    # The second training (trial 1) stops after its first batch, after trial 0 completed.
    proc = subprocess.Popen(
        args, env=env(HOLD=f"1:{held}"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(held.exists, 300, "trial 1 to train", proc)
        before = statuses(project)
        assert [before[t][0] for t in ("0", "1")] == ["COMPLETED", "RUNNING"]
        mtime = os.path.getmtime(project / "trial_0" / "trial.json")
        with open(project / "oracle.json") as f:
            draws_before = json.load(f)["draws"]
    finally:
        proc.send_signal(signal.SIGKILL)  # Mid-trial: it trains trial 1.
        proc.wait()
    assert not list(project.rglob("*.tmp"))  # No half-written store file.

    done = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = statuses(project)
    assert sorted(after) == ["0", "1", "2"]
    assert all(status == "COMPLETED" for status, _ in after.values())
    # Completed before the kill: neither lost nor run again.
    assert after["0"] == before["0"]
    assert os.path.getmtime(project / "trial_0" / "trial.json") == mtime
    assert after["1"][1] == before["1"][1]  # The killed trial ran again, same architecture.
    with open(project / "oracle.json") as f:
        state = json.load(f)
    assert state["draws"] > draws_before  # The strategy's state went on from where it was.
    assert (project / "controller.npz").exists()
    assert "resuming with 1 completed" in done.stdout


# A tabular search (6-layer macro space, a made-up table where more 2s score higher), whose
# evaluator waits to be killed at query HOLD=<k>:<file> of its process.
TABLE_SEARCH = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import kerasnas as kn

    SPACE = kn.spaces.MacroSpace(stages=(2, 2, 2))
    KEYS = [SPACE.key(SPACE.encode(a)) for a in SPACE.enumerate()]
    TABLE = {k: {"val_accuracy": sum(map(int, k)) / 12 + int(k, 3) / 3**6 / 100} for k in KEYS}
    KWARGS = {"bananas": dict(initial_trials=4, k=3, train_steps=50), "local": {}}

    class Held(kn.benchmarks.TabularBenchmark):
        answered = 0

        def evaluate(self, values, rng=None):
            hold = os.environ.get("HOLD")
            if hold and Held.answered == int(hold.split(":", 1)[0]):
                open(hold.split(":", 1)[1], "w").close()
                time.sleep(3600)  # Until the test kills this process.
            Held.answered += 1
            return super().evaluate(values, rng)

    def run(directory, project, strategy, max_trials):
        search = kn.Search(SPACE, strategy, evaluator=Held(SPACE, TABLE), max_trials=max_trials,
                           seed=0, directory=directory, project_name=project, verbose=0,
                           **KWARGS[strategy])
        search.fit()
        trials = search.oracle.trials
        return [SPACE.key(trials[r["trial_id"]].hyperparameters.values) for r in search.results()]

    if __name__ == "__main__":
        run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    """
)


@pytest.mark.parametrize("strategy", ["bananas", "local"])
def test_a_tabular_strategy_killed_mid_trial_resumes_as_if_uninterrupted(tmp_path, strategy):
    path = tmp_path / "table_search.py"
    path.write_text(TABLE_SEARCH)
    held = tmp_path / "held"
    args = [sys.executable, str(path), str(tmp_path), "parts", strategy, "10"]
    # Killed in the 7th trial: for bananas after its first predictor fit, mid-queue. The
    # store is written in batches of 4 finished trials: at the end of the 4th trial, then
    # not again before the kill, so the 5th and 6th trials are lost, whatever the timing.
    batched = env(HOLD=f"6:{held}", KERASNAS_TABLE_WRITE_TRIALS="4")
    proc = subprocess.Popen(args, env=batched, stderr=subprocess.PIPE)
    namespace = {"__name__": "table_search"}
    exec(TABLE_SEARCH, namespace)  # The uninterrupted search, here meanwhile.
    whole = namespace["run"](str(tmp_path), "whole", strategy, 10)
    try:
        wait_for(held.exists, 300, "the 7th trial", proc)
        before = statuses(tmp_path / "parts")  # Trial ids "00".."09".
        assert {t: status for t, (status, _) in before.items()} == {
            t: "COMPLETED" for t in ("00", "01", "02", "03")
        }
        with open(tmp_path / "parts" / "oracle.json") as f:
            assert json.load(f)["end_order"] == ["00", "01", "02", "03"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = statuses(tmp_path / "parts")
    assert all(status == "COMPLETED" for status, _ in after.values())
    space = namespace["SPACE"]
    assert [space.key(after[t][1]) for t in sorted(after)] == whole


@pytest.mark.parametrize("strategy", ["random+halving", "morphism"])
def test_chief_and_two_workers_finish_4_trials(tmp_path, script, strategy):
    meet = tmp_path / "meet"
    meet.mkdir()
    status = distributed.launch(
        [sys.executable, script, str(tmp_path), "parallel", "4", "1", strategy],
        num_workers=2,
        # Each worker's first trial waits for the other's: both train trials. Idle workers
        # ask the chief again every 0.5 s (min(KERASNAS_HEARTBEAT, 2)).
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "MEET": f"2:{meet}", "KERASNAS_HEARTBEAT": "0.5"},
        log_dir=tmp_path / "logs",
        timeout=900,
    )
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert status == 0, logs
    trials = statuses(tmp_path / "parallel")
    assert sorted(trials) == [str(i) for i in range(4)]
    assert all(s == "COMPLETED" for s, _ in trials.values())
    # Both workers trained trials; each trial was reported exactly once.
    lines = [
        line
        for name in ("worker0.log", "worker1.log")
        for line in logs[name].splitlines()
        if line.startswith("[kerasnas] trial ")
    ]
    assert len(lines) == 4
    assert all("[kerasnas] trial" in logs[name] for name in ("worker0.log", "worker1.log"))
    numbers = sorted(int(line.split()[2].split("/")[0]) for line in lines)
    assert numbers == list(range(1, 5))
    plans = {t: plan_module.read(str(tmp_path / "parallel" / f"trial_{t}")) for t in trials}
    if strategy != "morphism":  # The best of the first two went on from its checkpoint.
        promoted = [p.promotion for p in plans.values() if p.promotion]
        assert len(promoted) == 1 and promoted[0].rung == 1
        assert " rung=2/2 epochs=2 " in logs["worker0.log"] + logs["worker1.log"]
        (trial_id,) = [t for t, p in plans.items() if p.promotion]
        with open(tmp_path / "parallel" / f"trial_{trial_id}" / "trial.json") as f:
            inherited = json.load(f)["metrics"]["metrics"]["inherited"]["observations"]
        assert inherited[0]["value"] == [1.0]  # It loaded its parent's checkpoint.
    else:  # Children of finished trials inherited their weights.
        children = [t for t, p in plans.items() if p.lineage and p.lineage.parent]
        assert children
        for trial_id in children:
            with open(tmp_path / "parallel" / f"trial_{trial_id}" / "morph.json") as f:
                assert json.load(f)["inherited"] is True


def test_a_killed_workers_trial_is_retried_elsewhere(tmp_path, script):
    port = distributed.free_port()
    cmd = [sys.executable, script, str(tmp_path), "lost", "2", "1", "random"]
    # The chief gives a trial to another worker after 3 s without a heartbeat; live
    # workers beat every 0.5 s.
    extra = {"KERASNAS_TRIAL_TIMEOUT": "3", "KERASNAS_HEARTBEAT": "0.5"}
    held = tmp_path / "held"
    chief = subprocess.Popen(
        cmd,
        env=env(**extra, **distributed.role_env("chief", "127.0.0.1", port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Workers wait for the chief to serve: the first one starts with it. Its first
    # training (trial 0) stops after one batch, where it is killed.
    first = subprocess.Popen(
        cmd,
        env=env(HOLD=f"0:{held}", **extra, **distributed.role_env("worker", "127.0.0.1", port, 0)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    project = tmp_path / "lost"
    try:
        wait_for(held.exists, 300, "trial 0 to train", chief, first)
        assert statuses(project)["0"][0] == "RUNNING"
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = subprocess.run(
            cmd,
            env=env(**extra, **distributed.role_env("worker", "127.0.0.1", port, 1)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert second.returncode == 0, second.stderr[-3000:]
        out, _ = chief.communicate(timeout=120)
    finally:
        for proc in (chief, first):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert chief.returncode == 0, out[-3000:]
    assert "trial 0 goes to another worker" in out
    trials = statuses(project)
    assert sorted(trials) == ["0", "1"] and all(s == "COMPLETED" for s, _ in trials.values())


def test_a_corrupt_store_file_is_named_on_resume(tmp_path):
    space = kn.spaces.MacroSpace(stages=(1, 1, 1))
    table = {space.key(space.encode(a)): {"val_accuracy": 0.5} for a in space.enumerate()}
    bench = kn.benchmarks.TabularBenchmark(space, table)

    def search(max_trials=5, **kwargs):
        return kn.Search(
            space,
            max_trials=max_trials,
            seed=0,
            evaluator=bench,
            directory=str(tmp_path),
            project_name="p",
            verbose=0,
            **kwargs,
        )

    search().fit()
    trial_file = tmp_path / "p" / "trial_2" / "trial.json"
    trial_file.write_text(trial_file.read_text()[:40])  # A half-written file.
    with pytest.raises(kn.CorruptStoreError, match=str(trial_file)):
        search(max_trials=6).fit()
    search(overwrite=True).fit()  # The advertised way out works.
    oracle_file = tmp_path / "p" / "oracle.json"
    oracle_file.write_text("{")
    # An unreadable oracle state is rebuilt from the trial files (tests/faults_test.py).
    resumed = search(max_trials=6)
    resumed.fit()
    assert [r["status"] for r in resumed.results()] == ["COMPLETED"] * 6


def test_json_writes_are_atomic(tmp_path):
    path = str(tmp_path / "state.json")
    _io.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        _io.write_json(path, {"a": object()})  # Fails while writing the temporary file.
    assert _io.read_json(path) == {"a": 1}  # The previous content is intact.


def test_cli_roles_run_a_chief_and_a_worker(tmp_path):
    port = distributed.free_port()
    common = [
        sys.executable,
        "-m",
        "kerasnas",
        "--max_trials=1",
        "--epochs=1",
        "--num_blocks=1",
        "--num_cells=1",
        "--num_reductions=1",
        "--filters=4",
        "--ops=max_pool_3x3,identity,conv_1x1",
        f"--directory={tmp_path}",
        "--project_name=roles",
        f"--chief_address=127.0.0.1:{port}",
        "--export=",
    ]
    chief = subprocess.Popen(
        common + ["--role=chief"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # A worker waits for its chief to serve: both start at once.
    worker = subprocess.Popen(
        common + ["--role=worker", "--worker_id=0"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        distributed._wait_for_port("127.0.0.1", port, chief, 300)
        worker_out, worker_err = worker.communicate(timeout=600)
        assert worker.returncode == 0, worker_err[-3000:]
        assert worker_out.count("[kerasnas] trial ") == 1
        out, _ = chief.communicate(timeout=120)
    finally:
        for proc in (chief, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert chief.returncode == 0, out[-3000:]
    trials = statuses(tmp_path / "roles")
    assert sorted(trials) == ["0"] and trials["0"][0] == "COMPLETED"
