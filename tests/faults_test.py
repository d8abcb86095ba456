"""Faults a project directory must survive (issue: a project is never silently corrupted).

Each test is one way a user can hurt a project: two searches on it at once, a
resume with other settings, a file in the way. Tabular benchmarks stand in for
training, so the tests are about the store, not the models.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import keras_tuner
import pytest

import kerasnas as kn
from kerasnas.errors import ProjectInUseError
from kerasnas.search.project import LOCK
from tests import tiny

ROOT = pathlib.Path(__file__).resolve().parent.parent
TABLE = kn.benchmarks.macro_table_path(str(ROOT))
pytestmark = pytest.mark.skipif(
    TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent"
)


@pytest.fixture(scope="module")
def bench():
    return kn.benchmarks.load_macro(TABLE)


def search(bench, tmp_path, **kwargs):
    config = dict(
        strategy="random", objective="val_accuracy", max_trials=5, seed=0, evaluator=bench,
        directory=str(tmp_path), project_name="p", verbose=0,
    )  # fmt: skip
    config.update(kwargs)
    return kn.Search(bench.space, **config)


# A search that holds its project for a few seconds: each lookup sleeps.
HOLDER = textwrap.dedent(
    """
    import sys, time
    import kerasnas as kn

    class Slow:
        def __init__(self, bench):
            self.bench, self.space, self.metric_names = bench, bench.space, bench.metric_names

        def evaluate(self, values, rng):
            time.sleep(0.4)
            return self.bench.evaluate(values, rng)

    bench = kn.benchmarks.load_macro(sys.argv[1])
    kn.Search(bench.space, "random", max_trials=12, seed=0, evaluator=Slow(bench),
              directory=sys.argv[2], project_name="p", verbose=0).fit()
    """
)


def test_a_second_search_on_a_project_in_use_fails_at_once_naming_the_first(bench, tmp_path):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), TABLE, str(tmp_path)], cwd=ROOT, env={**os.environ}
    )
    lock = tmp_path / "p" / LOCK
    try:
        deadline = time.monotonic() + 120
        while not lock.exists():
            assert holder.poll() is None, "the first search ended before it took the lock"
            assert time.monotonic() < deadline, "the first search never took the lock"
            time.sleep(0.1)
        for kwargs in ({}, {"overwrite": True}):
            with pytest.raises(
                ProjectInUseError, match=rf"in use by another search \(pid {holder.pid} on host"
            ):
                search(bench, tmp_path, **kwargs).fit()
        assert holder.wait(timeout=300) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    assert not lock.exists()  # Released when the search ended.
    # Nothing of the first search was lost, and the project resumes.
    resumed = search(bench, tmp_path, max_trials=14)
    assert len(resumed.results()) == 12
    resumed.fit()
    assert [r["status"] for r in resumed.results()] == ["COMPLETED"] * 14


def test_a_lock_left_by_a_dead_process_is_taken_over(bench, tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "p").mkdir()
    stale = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "earlier"}
    (tmp_path / "p" / LOCK).write_text(json.dumps(stale))
    search(bench, tmp_path, verbose=1).fit()
    assert "taking over the lock" in capsys.readouterr().err
    assert not (tmp_path / "p" / LOCK).exists()


def test_a_lock_held_on_another_host_is_respected(bench, tmp_path):
    (tmp_path / "p").mkdir()
    other = {"pid": os.getpid(), "host": "another-machine", "started": "earlier"}
    (tmp_path / "p" / LOCK).write_text(json.dumps(other))
    with pytest.raises(ProjectInUseError, match="another-machine.*delete .*kerasnas.lock"):
        search(bench, tmp_path).fit()
    assert os.listdir(tmp_path / "p") == [LOCK]  # Nothing was written.


@pytest.mark.parametrize(
    "change, differs",
    [
        ({"strategy": "evolution"}, "strategy"),
        ({"objective": keras_tuner.Objective("test_accuracy", "max")}, "objective"),
        ({"objective": keras_tuner.Objective("val_accuracy", "min")}, "direction"),
    ],
)
def test_resume_refuses_another_strategy_or_objective(bench, tmp_path, change, differs):
    search(bench, tmp_path).fit()
    before = sorted(os.listdir(tmp_path / "p"))
    with pytest.raises(
        ValueError, match=rf"another {differs}, so its trials cannot be compared"
    ) as e:
        search(bench, tmp_path, **change).fit()
    assert "overwrite=True" in str(e.value) and "project_name" in str(e.value)
    assert "stored" in str(e.value) and "now" in str(e.value)
    assert sorted(os.listdir(tmp_path / "p")) == before
    search(bench, tmp_path, overwrite=True, **change).fit()  # The way out.


def test_resume_refuses_a_one_shot_search_with_other_trial_settings(tmp_path):
    space = kn.spaces.NASBench201Space(num_classes=10, input_shape=(8, 8, 1))
    project = kn.search.Project(str(tmp_path), "p")

    def record(**kwargs):
        oracle = kn.oracles.SPOSOracle(space, max_trials=2, num_candidates=2, **kwargs)
        search = kn.Search(space, oracle, directory=str(tmp_path), project_name="p")
        return {**search._record(), "space": space.get_config()}

    project.write(record(retrain_epochs=2))
    project.check_resume(space, record(retrain_epochs=2))
    with pytest.raises(ValueError, match="another strategy_settings"):
        project.check_resume(space, record(retrain_epochs=3))


def test_a_file_in_the_way_of_the_project_is_named(bench, tmp_path):
    (tmp_path / "p").write_text("not a folder")
    with pytest.raises(ValueError, match=r"project folder .*p is a file, not a folder"):
        search(bench, tmp_path).fit()
    with pytest.raises(ValueError, match=r"directory .*file\.txt is a file"):
        (tmp_path / "file.txt").write_text("")
        search(bench, tmp_path / "file.txt").fit()


def test_unreadable_store_files_are_named_with_the_fix(bench, tmp_path):
    search(bench, tmp_path).fit()
    trial_file = next((tmp_path / "p").glob("trial_*/trial.json"))
    trial_file.write_text("{}")
    with pytest.raises(kn.CorruptStoreError, match=rf"{trial_file}.*does not describe a trial"):
        search(bench, tmp_path).results()
    (tmp_path / "p" / "kerasnas.json").write_text("{}")
    with pytest.raises(kn.CorruptStoreError, match=r"kerasnas\.json does not describe"):
        search(bench, tmp_path).results()


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lost_oracle_state_is_rebuilt_from_the_trial_files(bench, tmp_path, capsys, damage):
    for strategy in ("random", "evolution"):
        folder = tmp_path / strategy
        first = search(bench, folder, strategy=strategy, max_trials=6)
        first.fit()
        before = [(r["trial_id"], r["hash"], r["score"]) for r in first.results()]
        oracle_file = folder / "p" / "oracle.json"
        if damage == "delete":
            oracle_file.unlink()
        else:
            oracle_file.write_text(oracle_file.read_text()[:40])
        resumed = search(bench, folder, strategy=strategy, max_trials=9, verbose=1)
        resumed.fit()
        assert "rebuilt from the 6 trial files" in capsys.readouterr().err
        after = [(r["trial_id"], r["hash"], r["score"]) for r in resumed.results()]
        assert after[:6] == before and len(after) == 9
        assert len({h for _, h, _ in after}) == 9  # No architecture trained twice.


def test_a_truncated_controller_file_is_named(bench, tmp_path):
    search(bench, tmp_path, strategy="controller", max_trials=6).fit()
    weights = tmp_path / "p" / "controller.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(kn.CorruptStoreError, match=r"controller\.npz cannot be read.*delete it"):
        search(bench, tmp_path, strategy="controller", max_trials=8).fit()


@pytest.mark.usefixtures("eager")
def test_a_missing_checkpoint_names_the_trial_and_retrain(tmp_path):
    from tests import tiny

    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    trained = kn.Search(tiny.fast_space(), max_trials=1, seed=0, directory=tmp_path, verbose=0)
    trained.fit(x, y, validation_data=(xv, yv), epochs=1)
    (checkpoint,) = tmp_path.glob("search/trial_*/checkpoint.weights.h5")
    checkpoint.unlink()
    again = kn.Search(tiny.fast_space(), max_trials=1, seed=0, directory=tmp_path, verbose=0)
    for call in (again.best_model, lambda: again.export(tmp_path / "best.keras")):
        with pytest.raises(kn.CorruptStoreError, match=r"weights of trial 0 .* missing.*retrain"):
            call()
    assert not (tmp_path / "best.keras").exists()


@pytest.mark.usefixtures("eager")
def test_three_failures_in_a_row_report_and_keep_the_last_trial(tmp_path, capsys):
    from tests import tiny

    (x, y), (xv, yv) = tiny.digits(train=32, val=16)

    def failing():  # Every model is over max_model_size: each trial fails at build time.
        return kn.Search(
            tiny.fast_space(), max_trials=5, seed=0, directory=tmp_path, max_model_size=1
        )

    with pytest.raises(RuntimeError, match="consecutive failures"):
        failing().fit(x, y, validation_data=(xv, yv), epochs=1)
    out = capsys.readouterr().out
    assert "trial 3/5" in out and "Oversized model" in out  # The last trial's line...
    assert "0 completed, 3 failed trials" in out  # ...and the summary.
    statuses = [
        json.loads(p.read_text())["status"] for p in tmp_path.glob("search/trial_*/trial.json")
    ]
    assert statuses == ["FAILED"] * 3  # The last one too: a resume does not run it again.


# -- Issue 29: faults found trying bad inputs as a new user -------------------------------
@pytest.mark.usefixtures("eager")
def test_a_truncated_checkpoint_names_the_file_and_the_fix(tmp_path):
    # Item 6: h5py's OSError named neither the file nor what to do.
    from tests import tiny

    (x, y), (xv, yv) = tiny.digits(train=64, val=32)
    trained = kn.Search(tiny.fast_space(), max_trials=1, seed=0, directory=tmp_path, verbose=0)
    trained.fit(x, y, validation_data=(xv, yv), epochs=1)
    (checkpoint,) = tmp_path.glob("search/trial_*/checkpoint.weights.h5")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    again = kn.Search(tiny.fast_space(), max_trials=1, seed=0, directory=tmp_path, verbose=0)
    for call in (again.best_model, lambda: again.export(tmp_path / "best.keras")):
        with pytest.raises(kn.CorruptStoreError) as e:
            call()
        message = str(e.value)
        assert f"weights of trial 0 ({checkpoint}) cannot be read" in message, message
        assert "Restore it from a backup" in message and "retrain(" in message, message
        assert isinstance(e.value.__cause__, OSError)  # h5py's error, kept as the cause.
    assert not (tmp_path / "best.keras").exists()
    assert len(again.results()) == 1  # The trial is kept.


@pytest.mark.parametrize("batch_size", [0, -5, "a", 2.5, True])
def test_prescreen_refuses_a_batch_size_that_is_not_a_positive_integer(batch_size):
    # Item 8b: 0 gave a misleading message, -5 was accepted, "a" a raw TypeError.
    space = kn.spaces.NASBench201Space(num_classes=10, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1 .*Received: batch"):
        kn.oracles.PrescreenOracle(space, batch_size=batch_size)
    assert kn.oracles.PrescreenOracle(space, batch_size=8).batch_size == 8


@pytest.mark.parametrize("seed", [-1, 1.5, "a", True])
def test_a_seed_that_is_not_a_non_negative_integer_is_refused_at_once(bench, tmp_path, seed):
    # Item 8d: seed=-1 failed inside the first trial with "expected non-negative integer".
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0 .*or None") as e:
        search(bench, tmp_path, seed=seed)
    assert f"seed={seed!r}" in str(e.value)
    assert not (tmp_path / "p").exists()


def test_validation_split_zero_is_named(bench, tmp_path):
    # Item 8d: validation_split=0.0 ended in "The objective 'val_accuracy' is not a metric
    # the models produce", which does not name the argument at fault.
    from tests import tiny

    (x, y), _ = tiny.digits(train=64, val=32)
    plain = kn.Search(tiny.fast_space(), max_trials=1, directory=tmp_path, verbose=0)
    for split in (0.0, 0):
        with pytest.raises(ValueError, match=rf"validation_split={split!r} keeps no examples"):
            plain.fit(x, y, validation_split=split, epochs=1)
    assert not (tmp_path / "search").exists()


def test_an_unwritable_project_folder_is_named_with_the_fix(bench, tmp_path):
    # Item 8f: fit() on a read-only folder raised a raw PermissionError on the lock file.
    folder = tiny.unwritable_folder(tmp_path)
    directory = folder if os.geteuid() != 0 else folder / "kerasnas_runs"
    if os.geteuid() != 0:  # A project there already: its folder is read-only too.
        folder.chmod(0o755)
        search(bench, folder).fit()
        (folder / "p").chmod(0o555)
        folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as e:
            search(bench, directory, max_trials=6).fit()
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)
            (folder / "p").chmod(0o755)
    message = str(e.value)
    assert message.startswith("Cannot write in "), message
    assert f"{directory}" in message and "kerasnas.lock" in message, message
    assert "Make it writable" in message and "another directory" in message, message
    assert not directory.exists() or len(search(bench, directory).results()) == 5
