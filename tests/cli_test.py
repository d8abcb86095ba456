"""The command line, `python -m kerasnas` (kerasnas/cli/), run as a user runs it."""

import concurrent.futures
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest
from absl.testing import flagsaver

import kerasnas as kn
from kerasnas import cli
from kerasnas.cli import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLAGFILES = sorted((ROOT / "examples" / "flags").glob("*.flags"))
DIGITS_RANDOM = ROOT / "examples" / "flags" / "digits_random.flags"
# Shrinks the example flagfile's search to two one-epoch trials of tiny cells.
TINY = [
    "--max_trials=2",
    "--epochs=1",
    "--num_blocks=1",
    "--num_cells=1",
    "--num_reductions=1",
    "--filters=4",
]
# TensorFlow's C++ start-up messages: printed on stderr while `import kerasnas`
# imports TensorFlow, before any kerasnas code runs, whatever TF_CPP_MIN_LOG_LEVEL says.
NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def kerasnas(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kerasnas", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        timeout=300,
    )


def own_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not TensorFlow's native start-up log."""
    return [line for line in stderr.splitlines() if line.strip() and not NATIVE_LOG.match(line)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A two-trial search run from the example flagfile with overrides."""
    directory = tmp_path_factory.mktemp("cli")
    args = [f"--flagfile={DIGITS_RANDOM}", *TINY, f"--directory={directory}", "--project_name=p"]
    return directory, args, kerasnas(*args)


def test_search_from_flagfile_prints_trials_and_exports_best_model(project):
    directory, _, run = project
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("[kerasnas] dataset digits: 1077 training and 360 validation")
    assert any(line.startswith("[kerasnas] trial 1/2 arch=") for line in lines)
    assert any(line.startswith("[kerasnas] trial 2/2 arch=") for line in lines)
    assert "2 completed, 0 failed trials" in run.stdout and "rank" in run.stdout
    path = directory / "p" / "best.keras"
    assert lines[-1].startswith("[kerasnas] best model (trial ")
    assert lines[-1].endswith(f"exported to {path}")

    # The flagfile set the search up; the flags after it overrode it.
    stored = json.loads((directory / "p" / "kerasnas.json").read_text())
    assert stored["strategy"] == "random" and stored["objective"] == "val_accuracy"
    space = stored["space"]
    assert space["class"] == "NASNetSpace" and space["filters"] == 4 and space["num_blocks"] == 1
    assert space["input_shape"] == [8, 8, 1] and space["num_classes"] == 10
    assert space["ops"] == ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"] + [
        "identity"
    ]

    model = keras.models.load_model(path)  # A plain Keras file: no custom objects.
    (x_test, y_test) = kn.data.load("digits")[2]
    assert model(x_test[:5], training=False).shape == (5, 10)


def test_rerun_resumes_the_project(project):
    directory, args, first = project
    assert first.returncode == 0
    run = kerasnas(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "max_trials=2, resuming with 2 completed" in run.stdout
    assert "[kerasnas] trial" not in run.stdout  # Nothing left to train.
    assert run.stdout.strip().splitlines()[-1].endswith(f"exported to {directory / 'p'}/best.keras")


def test_show_prints_the_stored_table_and_writes_nothing(project):
    directory, _, first = project
    assert first.returncode == 0
    stamps = {p: p.stat().st_mtime_ns for p in (directory / "p").rglob("*") if p.is_file()}
    run = kerasnas("--show", f"--directory={directory}", "--project_name=p")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert "NASNetSpace(" in run.stdout and "strategy random" in run.stdout
    assert "objective val_accuracy (max), 2 trials" in run.stdout
    assert "2 completed, 0 failed trials" in run.stdout
    rows = [line.split() for line in run.stdout.splitlines() if re.match(r"^\s+\d+\s+\d+\s", line)]
    assert [row[0] for row in rows] == ["1", "2"] and {row[1] for row in rows} == {"0", "1"}
    assert "[kerasnas] trial" not in run.stdout and "exported" not in run.stdout
    after = {p: p.stat().st_mtime_ns for p in (directory / "p").rglob("*") if p.is_file()}
    assert after == stamps


def test_main_shows_a_project_in_process(project, capsys):
    directory, _, first = project
    assert first.returncode == 0
    with flagsaver.flagsaver():
        argv = cli.parse_flags(
            ["kerasnas", "--show", f"--directory={directory}", "--project_name=p"]
        )
        assert argv == ["kerasnas"] and cli.FLAGS.show
        assert cli.main(argv) == 0
    assert "2 completed, 0 failed trials" in capsys.readouterr().out


# Bad command lines and the message each must give. They run in-process (the parser and
# main that the command runs) and a few also as the real command.
BAD = [
    (["--strategy=bayes"], "flag --strategy=bayes: value should be one of"),
    (["--max_trials=0"], "flag --max_trials=0:"),
    (["--max_trials=-3"], "flag --max_trials=-3:"),
    (["--max_trials=abc"], "flag --max_trials=abc:"),
    (["--dataset=no_such_dataset"], "Unknown dataset 'no_such_dataset'"),
    (["--space=resnet"], "flag --space=resnet: value should be one of"),
    (["--num_blocks=2", "--space=macro"], "--num_blocks does not apply to --space=macro"),
    (["--population_size=4"], "--population_size applies to --strategy=evolution only"),
    (["--morphism_mode=hill_climb"], "--morphism_mode applies to --strategy=morphism only"),
    (["--supernet_epochs=3"], "--supernet_epochs applies to --strategy=oneshot|spos|enas|"),
    (
        ["--strategy=darts", "--space=macro"],
        "One-shot search has no supernet for MacroSpace",
    ),
    (
        ["--strategy=evolution", "--population_size=4", "--sample_size=6"],
        "sample_size must lie in [1, population_size=4]",
    ),
    (["--ops=sep_conv_3x3,conv_9x9"], "Unknown op name(s) ['conv_9x9']"),
    (["--strategy=grid"], "strategy='grid' enumerates every architecture, but this NASNetSpace"),
    (["--objective=f1"], "cannot tell whether to maximise or minimise 'f1'"),
    (["--export=best.h5"], "end the path in .keras"),
    (["--distribution=multi_worker"], "needs the TF_CONFIG environment variable"),
    (["--flagfile=BAD_FLAGFILE"], "flag --max_trials=0:"),
    (["--show", "--project_name=missing"], "no kerasnas project in OUT/missing"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["stray"], "unexpected arguments ['stray']"),
]
# One of each kind of failure, run as real commands (a flag that does not parse, a value
# the flag validators refuse, a dataset found missing after start-up); every case of BAD
# runs in-process above.
AS_COMMANDS = {
    "--max_trials=abc",
    "--max_trials=-3",
    "--dataset=no_such_dataset",
}


def _bad_case(args, expected, tmp_path):
    """The case's command line and message, with its placeholders filled in."""
    bad_flagfile = tmp_path / "bad.flags"
    bad_flagfile.write_text("# A flagfile with a bad value.\n--max_trials=0\n")
    out = tmp_path / "runs"
    args = [a.replace("BAD_FLAGFILE", str(bad_flagfile)) for a in args]
    return [*args, f"--directory={out}"], expected.replace("OUT", str(out)), out


def test_bad_values_give_one_error_line_and_status_2_in_process(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for args, expected in BAD:
        argv, expected, out = _bad_case(args, expected, tmp_path)
        with flagsaver.flagsaver():
            try:
                status = cli.main(cli.parse_flags(["kerasnas", *argv]))
            except SystemExit as exit_:
                status = exit_.code
        captured = capsys.readouterr()
        assert status == 2, (args, captured)
        assert captured.out == "", args
        assert captured.err.startswith("kerasnas: error: ") and captured.err.count("\n") == 1
        assert expected in captured.err, (args, captured.err)
        assert not out.exists(), args  # Nothing was written.


def test_bad_values_exit_2_with_one_line_as_commands(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    cases = [
        _bad_case(args, expected, tmp_path) for args, expected in BAD if args[0] in AS_COMMANDS
    ]
    assert len(cases) == len(AS_COMMANDS)

    def attempt(argv):
        return subprocess.run(
            [sys.executable, "-m", "kerasnas", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
            timeout=300,
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(attempt, [argv for argv, _, _ in cases]))
    for (argv, expected, out), run in zip(cases, runs, strict=True):
        assert run.returncode == 2, (argv, run.returncode, run.stderr[-2000:])
        lines = own_lines(run.stderr)
        assert len(lines) == 1, (argv, lines)
        assert lines[0].startswith("kerasnas: error: ") and expected in lines[0], (argv, lines)
        assert "Traceback" not in run.stderr and run.stdout == "", argv
        assert not out.exists(), argv


def test_helpfull_documents_every_flag():
    run = kerasnas("--helpfull")
    assert run.returncode == 0, run.stderr[-2000:]
    # The flags a fresh process defines (flagsaver in this process's other tests may
    # have deleted and re-created some, which loses absl's record of their module).
    listed = subprocess.run(
        [sys.executable, "-c", "import json; from kerasnas import cli; cli.flags.define_flags(); "
         "print(json.dumps({f.name: f.help for f in "
         "cli.FLAGS.get_flags_for_module(cli.flags.__name__)}))"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    ours = json.loads(listed.stdout.strip().splitlines()[-1])
    assert len(ours) >= 25
    for name, text in ours.items():
        assert text and len(text) > 10, name
        # absl writes a long enum's choices on the next line: "  --name:\n    <a|b|...>".
        assert re.search(rf"^  --(\[no\])?{name}:\s", run.stdout, re.M), name
    assert "--flagfile" in run.stdout and "python -m kerasnas" in run.stdout


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=lambda p: p.name)
def test_example_flagfiles_describe_valid_searches(flagfile, tmp_path):
    with flagsaver.flagsaver():
        assert cli.parse_flags(["kerasnas", f"--flagfile={flagfile}"]) == ["kerasnas"]
        search = kn.Search(
            cli.space_from_flags(),
            cli.FLAGS.strategy,
            objective=cli.parse_objective(cli.FLAGS.objective),
            max_trials=cli.FLAGS.max_trials,
            directory=tmp_path,
            **cli.strategy_kwargs(),
        )
        assert search.strategy == cli.FLAGS.strategy
        assert cli.FLAGS.project_name == flagfile.stem


# A valid value of each space flag, as written on the command line, and as the argument gets it.
SPACE_FLAG_VALUES = {
    "num_blocks": ("1", 1),
    "num_cells": ("1", 1),
    "num_reductions": ("1", 1),
    "filters": ("8", 8),
    "stem_strides": ("2", 2),
    "ops": ("identity,conv_3x3", ["identity", "conv_3x3"]),
    "stages": ("1,2", [1, 2]),
    "learning_rate": ("0.01", 0.01),
}


def test_each_space_takes_exactly_the_flags_it_declares():
    declared = set().union(*(getattr(c, "cli_flags", {}) for c in cli.SPACES.values()))
    assert declared == set(SPACE_FLAG_VALUES)
    for name, space_class in cli.SPACES.items():
        for flag, (text, value) in SPACE_FLAG_VALUES.items():
            with flagsaver.flagsaver():
                cli.parse_flags(["kerasnas", f"--space={name}", f"--{flag}={text}"])
                if flag not in getattr(space_class, "cli_flags", {}):
                    with pytest.raises(cli.UsageError, match=f"--{flag} does not apply"):
                        cli.space_from_flags()
                    continue
                config = cli.space_from_flags().get_config()
            declaration = registry.takers(cli.SPACES, flag)[name]
            offset = declaration.offset
            assert config[declaration.argument] == (value + offset if offset else value), (
                name,
                flag,
            )
    # NAS-Bench-101 downsamples between stacks: its declaration adds one.
    with flagsaver.flagsaver():
        cli.parse_flags(["kerasnas", "--space=nasbench101", "--num_reductions=3"])
        assert cli.space_from_flags().num_stacks == 4


def test_a_registered_space_or_strategy_gets_the_flags_it_declares(monkeypatch):
    class TinySpace(kn.spaces.ConvNetSpace):
        cli_flags = {"num_cells": "num_stages", "learning_rate": "learning_rate"}

    class CappedOracle(kn.oracles.RandomSearchOracle):
        cli_flags = {"max_params": "limit", "max_layers": ("depth", 1)}

    monkeypatch.setitem(kn.spaces.SPACES, "tiny", TinySpace)
    monkeypatch.setitem(kn.oracles.STRATEGIES, "capped", CappedOracle)
    common = ["kerasnas", "--num_cells=3", "--max_params=7", "--max_layers=2"]
    with flagsaver.flagsaver():
        cli.parse_flags([*common, "--space=tiny", "--strategy=capped"])
        space = cli.space_from_flags()
        assert isinstance(space, TinySpace) and space.num_stages == 3
        assert cli.strategy_kwargs() == {"limit": 7, "depth": 3}
        # The help of a shared flag names every class that takes it.
        assert "--space=tiny: num_stages (default 2)" in cli.FLAGS["num_cells"].help
        assert "--strategy=capped: limit" in cli.FLAGS["max_params"].help
    with flagsaver.flagsaver():
        # The other takers of those flags are named in the errors.
        cli.parse_flags([*common, "--space=macro", "--strategy=random"])
        with pytest.raises(cli.UsageError, match="only to nasnet, nasbench101, nasbench201, tiny"):
            cli.space_from_flags()
        with pytest.raises(cli.UsageError, match=re.escape("--strategy=morphism|capped only")):
            cli.strategy_kwargs()


class PatientOracle(kn.oracles.RandomSearchOracle):
    """Random search with a flag of its own (registered at run time by the tests below)."""

    cli_flags = {
        "patient_wait": registry.Flag(
            "wait", type=int, lower_bound=0, help="Seconds of patience (a test flag)"
        )
    }

    def __init__(self, space, wait: int = 4, **kwargs):
        super().__init__(space, **kwargs)
        self.wait = wait


def test_a_strategy_registered_at_run_time_is_a_choice_with_its_flags(request, capsys):
    kn.oracles.register("patient", PatientOracle)
    request.addfinalizer(lambda: kn.oracles.STRATEGIES.pop("patient"))
    with flagsaver.flagsaver():
        cli.parse_flags(["kerasnas", "--strategy=patient", "--patient_wait=2"])
        assert cli.FLAGS.strategy == "patient"
        assert cli.strategy_kwargs() == {"wait": 2}
        assert "patient (PatientOracle)" in cli.FLAGS["strategy"].help
        help = cli.FLAGS["patient_wait"].help
        assert (
            help == "Seconds of patience (a test flag). Sets --strategy=patient: wait (default 4)."
        )
        assert "|patient." in cli.FLAGS["halving_eta"].help  # It can halve, as random can.
    with flagsaver.flagsaver():
        cli.parse_flags(["kerasnas", "--patient_wait=2"])
        with pytest.raises(cli.UsageError, match=r"--patient_wait applies to --strategy=patient"):
            cli.strategy_kwargs()
    with flagsaver.flagsaver(), pytest.raises(SystemExit) as exit_:
        cli.parse_flags(["kerasnas", "--strategy=patient", "--patient_wait=-1"])
    assert exit_.value.code == 2
    assert "flag --patient_wait=-1: " in capsys.readouterr().err


# Registers a strategy, then runs the command's entry point (absl's parser, then main) on a
# tiny NAS-Bench-Macro network; the strategy prints the value its own flag gave it.
RUN_TIME_STRATEGY = """
import sys
import kerasnas as kn
from kerasnas.cli import registry, run

class LoudOracle(kn.oracles.RandomSearchOracle):
    cli_flags = {"loud_volume": registry.Flag("volume", type=int, help="How loud.")}

    def __init__(self, space, volume=1, **kwargs):
        super().__init__(space, **kwargs)
        print(f"LoudOracle volume={volume}", flush=True)

kn.oracles.register("loud", LoudOracle)
run(["kerasnas", *sys.argv[1:]])
"""


def test_a_strategy_registered_at_run_time_runs_a_search_from_the_command_line(tmp_path):
    args = [
        "--strategy=loud",
        "--loud_volume=11",
        "--space=macro",
        "--stages=1",
        "--filters=4",
        "--dataset=digits",
        "--epochs=1",
        "--max_trials=2",
        f"--directory={tmp_path}",
        "--project_name=loud",
        "--export=",
    ]
    run = subprocess.run(
        [sys.executable, "-c", RUN_TIME_STRATEGY, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "LoudOracle volume=11" in run.stdout
    assert "[kerasnas] trial 2/2 arch=" in run.stdout
    assert "2 completed, 0 failed trials" in run.stdout
    stored = json.loads((tmp_path / "loud" / "kerasnas.json").read_text())
    assert stored["strategy"] == "loud" and stored["space"]["class"] == "MacroSpace"


def test_halving_is_refused_for_the_strategies_that_cannot_halve():
    unable = [n for n, c in kn.oracles.STRATEGIES.items() if not c.supports_halving]
    able = [n for n, c in kn.oracles.STRATEGIES.items() if c.supports_halving]
    assert "prescreen" in able and "morphism" in unable
    for name in unable:
        with flagsaver.flagsaver():
            cli.parse_flags(["kerasnas", f"--strategy={name}", "--halving_eta=3"])
            with pytest.raises(cli.UsageError, match=re.escape(f"--strategy={'|'.join(able)}.")):
                cli.strategy_kwargs()
    with flagsaver.flagsaver():
        cli.parse_flags(["kerasnas", "--strategy=prescreen", "--halving_eta=3", "--epochs=9"])
        assert cli.strategy_kwargs()["halving"] == kn.Halving(9, 1, 3)


def test_every_declared_argument_is_a_constructor_argument():
    with flagsaver.flagsaver():
        cli.parse_flags(["kerasnas"])  # Defines the registries' flags.
        for registry_ in (cli.SPACES, kn.oracles.STRATEGIES):
            for flag, users in registry.declarations(registry_).items():
                for name, declaration in users.items():
                    cls = registry_[name]
                    inits = [vars(k)["__init__"] for k in cls.__mro__[:-1] if "__init__" in vars(k)]
                    arguments = set().union(*(inspect.signature(i).parameters for i in inits))
                    assert declaration.argument in arguments, (cls.__name__, flag)
                assert cli.FLAGS[flag].default is None, flag


def test_docs_list_every_strategy_and_space():
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in [*kn.oracles.STRATEGIES, *cli.SPACES]:
        assert f"`{name}`" in text, name
    for flag in set(registry.declarations(cli.SPACES)) | set(
        registry.declarations(kn.oracles.STRATEGIES)
    ):
        assert f"`--{flag}`" in text, flag
    sample = re.search(r"kerasnas: error: flag --strategy=bayes: (.*)", text).group(1)
    assert sample == f"value should be one of <{'|'.join(kn.oracles.STRATEGIES)}>"


def test_mirrored_distribution_exports_a_plain_model(tmp_path):
    path = tmp_path / "m.keras"
    run = kerasnas(
        f"--flagfile={DIGITS_RANDOM}",
        *TINY,
        "--max_trials=1",
        "--ops=max_pool_3x3,identity,conv_1x1",  # Cells without separable convolutions.
        "--distribution=mirrored",
        f"--directory={tmp_path}",
        f"--export={path}",
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[kerasnas] distribution: MirroredStrategy with 1 replica(s)" in run.stdout
    assert run.stdout.strip().splitlines()[-1].endswith(f"exported to {path}")
    assert keras.models.load_model(path).output_shape == (None, 10)
