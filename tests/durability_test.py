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

SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import kerasnas as kn

    directory, project, max_trials, epochs, strategy = sys.argv[1:6]
    (x, y), (xv, yv), _ = kn.data.load("digits")
    space = kn.spaces.NASNetSpace(num_blocks=1, num_cells=1, num_reductions=1, filters=8,
                                  ops=["sep_conv_3x3", "max_pool_3x3", "identity", "conv_1x1"])
    search = kn.Search(space, strategy, max_trials=int(max_trials), seed=0,
                       directory=directory, project_name=project)
    search.fit(x[:600], y[:600], validation_data=(xv, yv), epochs=int(epochs))
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


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "search.py"
    path.write_text(SCRIPT)
    return str(path)


def test_sigkill_mid_trial_then_resume(tmp_path, script):
    args = [sys.executable, script, str(tmp_path), "crash", "4", "3", "controller"]
    project = tmp_path / "crash"
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill it while trial 2 trains, after trials 0 and 1 completed.
    wait_for(
        lambda: project.exists() and statuses(project).get("2", ("",))[0] == "RUNNING",
        240,
        "trial 2 to start",
    )
    before = statuses(project)
    assert [before[t][0] for t in ("0", "1")] == ["COMPLETED", "COMPLETED"]
    mtimes = {t: os.path.getmtime(project / f"trial_{t}" / "trial.json") for t in ("0", "1")}
    with open(project / "oracle.json") as f:
        draws_before = json.load(f)["draws"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(project.rglob("*.tmp"))  # No half-written store file.

    done = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = statuses(project)
    assert sorted(after) == ["0", "1", "2", "3"]
    assert all(status == "COMPLETED" for status, _ in after.values())
    for t in ("0", "1"):  # Completed before the kill: neither lost nor run again.
        assert after[t] == before[t]
        assert os.path.getmtime(project / f"trial_{t}" / "trial.json") == mtimes[t]
    assert after["2"][1] == before["2"][1]  # The killed trial ran again, same architecture.
    with open(project / "oracle.json") as f:
        state = json.load(f)
    assert state["draws"] > draws_before  # The strategy's state went on from where it was.
    assert (project / "controller.npz").exists()
    assert "resuming with 2 completed" in done.stdout


@pytest.mark.parametrize("strategy", ["random", "morphism"])
def test_chief_and_two_workers_finish_8_trials(tmp_path, script, strategy):
    status = distributed.launch(
        [sys.executable, script, str(tmp_path), "parallel", "8", "1", strategy],
        num_workers=2,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        log_dir=tmp_path / "logs",
        timeout=900,
    )
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert status == 0, logs
    trials = statuses(tmp_path / "parallel")
    assert sorted(trials) == [str(i) for i in range(8)]
    assert all(s == "COMPLETED" for s, _ in trials.values())
    # Both workers trained trials; each trial was reported exactly once.
    lines = [
        line
        for name in ("worker0.log", "worker1.log")
        for line in logs[name].splitlines()
        if line.startswith("[kerasnas] trial ")
    ]
    assert len(lines) == 8
    assert all("[kerasnas] trial" in logs[name] for name in ("worker0.log", "worker1.log"))
    numbers = sorted(int(line.split()[2].split("/")[0]) for line in lines)
    assert numbers == list(range(1, 9))
    if strategy == "morphism":  # Children of finished trials inherited their weights.
        children = [v for _, v in trials.values() if v["morph/parent"]]
        assert children
        for trial_id, (_, values) in trials.items():
            if values["morph/parent"]:
                with open(tmp_path / "parallel" / f"trial_{trial_id}" / "morph.json") as f:
                    assert json.load(f)["inherited"] is True


def test_a_killed_workers_trial_is_retried_elsewhere(tmp_path, script):
    port = distributed.free_port()
    cmd = [sys.executable, script, str(tmp_path), "lost", "3", "2", "random"]
    extra = {"KERASNAS_TRIAL_TIMEOUT": "8", "KERASNAS_HEARTBEAT": "1"}
    chief = subprocess.Popen(
        cmd,
        env=env(**extra, **distributed.role_env("chief", "127.0.0.1", port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        distributed._wait_for_port("127.0.0.1", port, chief, 120)
        first = subprocess.Popen(
            cmd,
            env=env(**extra, **distributed.role_env("worker", "127.0.0.1", port, 0)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        project = tmp_path / "lost"
        wait_for(lambda: project.exists() and "0" in statuses(project), 240, "trial 0 to start")
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
        if chief.poll() is None:
            chief.kill()
    assert chief.returncode == 0, out[-3000:]
    assert "trial 0 goes to another worker" in out
    trials = statuses(project)
    assert sorted(trials) == ["0", "1", "2"] and all(s == "COMPLETED" for s, _ in trials.values())


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
    with pytest.raises(ValueError, match="oracle.json cannot be read"):
        search(max_trials=6).fit()


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
        "--max_trials=2",
        "--epochs=1",
        "--num_blocks=1",
        "--num_cells=1",
        "--num_reductions=1",
        "--filters=4",
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
    try:
        distributed._wait_for_port("127.0.0.1", port, chief, 120)
        worker = subprocess.run(
            common + ["--role=worker", "--worker_id=0"],
            env=env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert worker.stdout.count("[kerasnas] trial ") == 2
        out, _ = chief.communicate(timeout=120)
    finally:
        if chief.poll() is None:
            chief.kill()
    assert chief.returncode == 0, out[-3000:]
    trials = statuses(tmp_path / "roles")
    assert sorted(trials) == ["0", "1"] and all(s == "COMPLETED" for s, _ in trials.values())
