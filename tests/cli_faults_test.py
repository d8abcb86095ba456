"""The command line's faults keep docs/cli.md's promise (issue 19, item 7).

Exit status 2 and one `kerasnas: error:` line, before anything is trained or
written, for a value that cannot work (a file as --directory, an unwritable
--export, a text file as npz:PATH, a bad objective direction); exit status 1
and the same one last line when the search itself fails (every trial failed,
or too many in a row did). All but one run in-process (the parser and `main`
that the command runs); the consecutive failures run as the real command.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from absl.testing import flagsaver

from kerasnas import cli
from kerasnas.search import METADATA
from tests import tiny

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Tiny one-epoch NASNet cells on digits; --max_model_size=1 makes each trial fail as it is built.
FAILING = [
    "--dataset=digits",
    "--epochs=1",
    "--num_blocks=1",
    "--num_cells=1",
    "--num_reductions=1",
    "--filters=4",
    "--max_model_size=1",
    "--project_name=p",
]
ERROR = "kerasnas: error: "
# TensorFlow's C++ start-up messages, printed on stderr as the command imports TensorFlow.
NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Runs the command's parser and `main`; returns the exit status, stdout and stderr."""
    with flagsaver.flagsaver():
        try:
            status = cli.main(cli.parse_flags(["kerasnas", *args]))
        except SystemExit as exit_:
            status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def last_error(err: str) -> str:
    """The one `kerasnas: error:` line, which must end stderr."""
    lines = [line for line in err.splitlines() if line.strip() and not NATIVE_LOG.match(line)]
    assert lines and lines[-1].startswith(ERROR), lines[-5:]
    assert sum(line.startswith(ERROR) for line in lines) == 1, lines
    return lines[-1]


def assert_usage_error(status: int, out: str, err: str, expected: str) -> str:
    """Exit status 2, no output, and stderr exactly one error line holding `expected`."""
    assert status == 2, (status, err)
    assert out == "", out
    line = last_error(err)
    assert err == line + "\n", err  # No traceback, no other line.
    assert expected in line, line
    return line


def test_a_file_as_directory_exits_2_before_training(tmp_path, capsys):
    file = tmp_path / "runs"
    file.write_text("not a folder\n")
    status, out, err = run_in_process(capsys, *FAILING, f"--directory={file}")
    assert_usage_error(status, out, err, f"--directory={file} is a file")
    # A folder under a file cannot be made either.
    status, out, err = run_in_process(capsys, *FAILING, f"--directory={file}/sub")
    assert_usage_error(status, out, err, f"--directory={file}/sub: {file} is a file")
    assert file.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # Nothing was written.


@pytest.mark.parametrize("case", ["parent_is_a_file", "existing_folder", "unwritable_folder"])
def test_an_unwritable_export_exits_2_before_training(case, tmp_path, capsys):
    expected = {
        "parent_is_a_file": "is a file, not a folder",
        "existing_folder": "is a folder; name the .keras file to write",
        "unwritable_folder": "cannot write in",
    }[case]
    if case == "parent_is_a_file":
        (tmp_path / "models").write_text("a file\n")
        export = tmp_path / "models" / "best.keras"
    elif case == "existing_folder":
        export = tmp_path / "best.keras"
        export.mkdir()
    else:
        export = tiny.unwritable_folder(tmp_path) / "kerasnas_models" / "best.keras"
    directory = tmp_path / "runs"
    status, out, err = run_in_process(
        capsys, *FAILING, f"--directory={directory}", f"--export={export}"
    )
    line = assert_usage_error(status, out, err, expected)
    assert line.startswith(f"{ERROR}--export={export}"), line
    assert not directory.exists()  # Checked before the project was written.
    assert not export.parent.parent.joinpath("kerasnas_models").exists()


def test_consecutive_failed_trials_print_the_summary_and_exit_1(tmp_path):
    # The real command: keras-tuner's RuntimeError used to escape it as a traceback.
    run = subprocess.run(
        [sys.executable, "-m", "kerasnas", *FAILING, "--max_trials=5", f"--directory={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert run.returncode == 1, run.stderr[-3000:]
    # The third trial's line (keras-tuner raised before it) and the table are printed.
    third = r"^\[kerasnas\] trial 3/5 arch=\w+ FAILED: .*Oversized model"
    assert re.search(third, run.stdout, re.M), run.stdout
    assert "[kerasnas] trial 4/5" not in run.stdout  # The search stopped after three.
    assert "0 completed, 3 failed trials" in run.stdout, run.stdout
    line = last_error(run.stderr)
    assert line.startswith(f"{ERROR}3 trials in a row failed; the last: "), line
    assert line.endswith("Skip model.") and "Oversized model" in line, line
    assert "RuntimeError" not in run.stderr and "consecutive failures" not in run.stderr
    assert "exported" not in run.stdout and not (tmp_path / "p" / "best.keras").exists()


def test_every_trial_failed_names_the_last_error_and_exits_1(tmp_path, capsys):
    args = [*FAILING, "--max_trials=2", f"--directory={tmp_path}"]
    status, out, err = run_in_process(capsys, *args)
    assert status == 1, err[-3000:]
    assert "0 completed, 2 failed trials" in out and "exported" not in out
    line = last_error(err)
    assert line.startswith(f"{ERROR}no trial completed in {tmp_path / 'p'}: all 2 failed; "), line
    assert "the last: " in line and "Oversized model" in line, line
    assert "call fit() first" not in err
    # The finished project, resumed with no export: the search still failed.
    status, out, err = run_in_process(capsys, *args, "--export=")
    assert status == 1, err[-3000:]
    assert last_error(err).startswith(f"{ERROR}no trial completed in {tmp_path / 'p'}: all 2")


def test_a_text_file_as_npz_exits_2_with_a_clear_message(tmp_path, capsys):
    text = tmp_path / "data.txt"
    text.write_text("x,y\n0.5,1\n")
    directory = tmp_path / "runs"
    status, out, err = run_in_process(
        capsys, *FAILING, f"--dataset=npz:{text}", f"--directory={directory}"
    )
    line = assert_usage_error(
        status, out, err, f"npz:{text} is not an .npz archive (it looks like a text file"
    )
    assert "np.savez(" in line and "pickle" not in line, line
    assert not directory.exists()


def test_an_objective_direction_must_be_max_or_min(tmp_path, capsys):
    directory = tmp_path / "runs"
    status, out, err = run_in_process(
        capsys, *FAILING, "--objective=val_accuracy:up", f"--directory={directory}"
    )
    line = assert_usage_error(status, out, err, "must be max or min")
    assert "--objective=val_accuracy:max" in line and "val_accuracy:up:max" not in line, line
    assert not directory.exists()


# -- Issue 29: faults found trying bad inputs as a new user -------------------------------
# FAILING's tiny cells without the size limit: a one-trial search trains in seconds.
TINY = [arg for arg in FAILING if not arg.startswith(("--max_model_size", "--project_name"))]


def files_and_stamps(folder: pathlib.Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-trial project (`--project_name=p`) and the flags that searched it."""
    directory = tmp_path_factory.mktemp("trained")
    args = [*TINY, "--max_trials=1", f"--directory={directory}", "--project_name=p"]
    with flagsaver.flagsaver():
        assert cli.main(cli.parse_flags(["kerasnas", *args])) == 0
    assert (directory / "p" / "best.keras").exists()
    return directory, args


@pytest.mark.parametrize(
    "settings",
    [["--halving_eta=3", "--epochs=2", "--max_trials=2"],
     ["--strategy=prescreen", "--prescreen_pool=4", "--max_trials=1"]],
    ids=["halving", "prescreen_pool"],
)  # fmt: skip
def test_show_needs_no_search_flags_whatever_the_strategy_settings(settings, tmp_path, capsys):
    # Item 5: --show built the strategy with its defaults and refused the stored settings.
    args = [*TINY, *settings, f"--directory={tmp_path}", "--project_name=p", "--export="]
    status, out, err = run_in_process(capsys, *args)
    assert status == 0, err[-3000:]
    stored = json.loads((tmp_path / "p" / METADATA).read_text())["strategy_settings"]
    assert stored and stored != {}, stored  # Not the defaults: --show must read them.
    before = files_and_stamps(tmp_path / "p")
    status, out, err = run_in_process(
        capsys, "--show", f"--directory={tmp_path}", "--project_name=p"
    )
    assert status == 0, err
    assert ERROR not in err and "Traceback" not in err, err
    strategy = "prescreen" if "--strategy=prescreen" in settings else "random"
    assert f"strategy {strategy}, objective val_accuracy (max)" in out, out
    trials = int(settings[-1].split("=")[1])
    assert f"{trials} completed, 0 failed trials" in out, out
    assert files_and_stamps(tmp_path / "p") == before  # --show writes nothing.


def test_show_takes_the_stored_objective_direction(trained, tmp_path, capsys):
    # A metric whose direction keras-tuner cannot infer: the stored direction is enough.
    directory, _ = trained
    shutil.copytree(directory / "p", tmp_path / "p")
    metadata = tmp_path / "p" / METADATA
    record = json.loads(metadata.read_text())
    assert record["direction"] == "max"
    record["objective"] = "val_f1"
    metadata.write_text(json.dumps(record))
    status, out, err = run_in_process(
        capsys, "--show", f"--directory={tmp_path}", "--project_name=p"
    )
    assert status == 0, err
    assert "objective val_f1 (max)" in out, out


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_damaged_checkpoint_exits_1_with_one_line_naming_it(trained, damage, tmp_path, capsys):
    # Item 6: a deleted checkpoint ended in a 27-line traceback; a truncated one in h5py's
    # OSError, which does not name the file.
    directory, args = trained
    shutil.copytree(directory / "p", tmp_path / "p")
    (checkpoint,) = (tmp_path / "p").glob("trial_*/checkpoint.weights.h5")
    exported = (tmp_path / "p" / "best.keras").read_bytes()
    if damage == "delete":
        checkpoint.unlink()
        expected = f"The trained weights of trial 0 ({checkpoint}) are missing."
    else:
        checkpoint.write_bytes(checkpoint.read_bytes()[:100])
        expected = f"The trained weights of trial 0 ({checkpoint}) cannot be read ("
    args = [a for a in args if not a.startswith("--directory")] + [f"--directory={tmp_path}"]
    status, out, err = run_in_process(capsys, *args)
    assert status == 1, err[-3000:]
    line = last_error(err)
    assert "Traceback" not in err and "OSError" not in err, err
    assert line.startswith(f"{ERROR}{expected}"), line
    assert "retrain" in line and "--export= exports nothing" in line, line
    if damage == "truncate":
        assert "Restore it from a backup" in line, line
    assert "1 completed, 0 failed trials" in out and "exported" not in out, out
    # Nothing lost: the trial and the model exported earlier are kept.
    assert (tmp_path / "p" / "best.keras").read_bytes() == exported
    status, out, err = run_in_process(capsys, *args, "--export=")
    assert status == 0 and ERROR not in err, err  # The way out the line names.


def test_failed_trials_print_no_keras_tuner_tracebacks(tmp_path, capsys):
    # Item 8a: keras-tuner printed each failed trial's traceback before the one line.
    status, out, err = run_in_process(capsys, *FAILING, "--max_trials=2", f"--directory={tmp_path}")
    assert status == 1, err[-3000:]
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not NATIVE_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith(ERROR), lines
    assert "Oversized model" in lines[0]
    # The traceback stays in each trial's message.
    messages = [json.loads(p.read_text())["message"] for p in tmp_path.glob("p/trial_*/trial.json")]
    assert len(messages) == 2
    assert all(m.startswith("Traceback") and "Oversized model" in m for m in messages), messages


def test_halving_min_epochs_without_halving_eta_is_refused(tmp_path, capsys):
    # Item 8c: --halving_min_epochs alone was silently ignored.
    status, out, err = run_in_process(
        capsys, *TINY, "--halving_min_epochs=2", f"--directory={tmp_path / 'runs'}"
    )
    line = assert_usage_error(status, out, err, "--halving_min_epochs applies only with")
    assert "--halving_eta" in line.split("applies only with", 1)[1], line
    assert not (tmp_path / "runs").exists()


def test_a_resume_mismatch_names_the_command_line_flags(trained, capsys):
    # Item 8e: the message said overwrite=True, the Python argument, not --overwrite.
    directory, args = trained
    before = files_and_stamps(directory / "p")
    status, out, err = run_in_process(capsys, *args, "--filters=8")
    assert status == 2, err
    line = last_error(err)
    assert "searched with another space" in line, line
    assert "pass --overwrite (deletes its trials) or another --project_name" in line, line
    assert "overwrite=True" not in line and " project_name" not in line, line
    assert files_and_stamps(directory / "p") == before
