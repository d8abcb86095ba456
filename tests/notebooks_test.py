"""The example notebooks: in sync with their .py sources, and each runs top to bottom.

Every notebook is executed with nbclient in quick mode (`KERASNAS_QUICK=1`: tiny budgets,
data that is embedded, made up by tensorflow-datasets' `mock_data`, or the shared
NAS-Bench-Macro table), so nothing is downloaded. The `.py` twins are the notebooks'
sources, so running the notebooks runs their code. The kernel runs TensorFlow functions
eagerly (a cell the test puts first): tracing the quick mode's tiny models would take
most of the time, and each strategy's graph-mode training has its own tests.
"""

import importlib.util
import json
import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", os.path.join(EXAMPLES, "make_notebooks.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks = _generator()
NAMES = sorted(make_notebooks.NOTEBOOKS)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_source(name):
    path = os.path.join(EXAMPLES, name)
    with open(path, encoding="utf-8") as f:
        stored = f.read()
    assert stored == make_notebooks.render(name), (
        f"examples/{name} is out of date with examples/{make_notebooks.NOTEBOOKS[name][0]}; "
        "run python examples/make_notebooks.py"
    )
    nb = nbformat.reads(stored, as_version=4)
    first = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and first.startswith("# ")
    assert (
        f"(https://colab.research.google.com/github/kerasnas/kerasnas/blob/main/examples/{name})"
        in first
    )
    install = nb.cells[1].source
    assert 'find_spec("kerasnas") is None' in install
    assert "%pip install -q git+https://github.com/kerasnas/kerasnas" in install
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # Every example has a quick mode, and the markdown explains what the code does.
    assert any("KERASNAS_QUICK" in c.source for c in nb.cells if c.cell_type == "code")
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3


def test_every_example_script_has_a_notebook():
    sources = {source for source, _ in make_notebooks.NOTEBOOKS.values()}
    scripts = {
        f
        for f in os.listdir(EXAMPLES)
        if f.endswith(".py") and f not in ("make_notebooks.py", "quickstart.py")
    }
    assert scripts == sources
    assert {f for f in os.listdir(EXAMPLES) if f.endswith(".ipynb")} == set(NAMES)


def test_parse_rejects_malformed_sources():
    parse = make_notebooks.parse
    source = '"""Title.\n\nIntro."""\n\n# %% [markdown]\n# Hi\n\n# %%\nx = 1\n'
    docstring, cells = parse(source, "s.py")
    assert docstring == "Title.\n\nIntro." and cells == [("markdown", "Hi"), ("code", "x = 1")]
    with pytest.raises(ValueError, match="needs a module docstring"):
        parse("x = 1\n", "s.py")
    with pytest.raises(ValueError, match="code after the docstring must sit in a cell"):
        parse('"""T."""\nx = 1\n', "s.py")
    with pytest.raises(ValueError, match="s.py:4: a markdown cell holds only comment lines"):
        parse('"""T."""\n# %% [markdown]\n# Text\nx = 1\n', "s.py")
    with pytest.raises(ValueError, match="a cell marker is"):
        parse('"""T."""\n# %% [md]\nx = 1\n', "s.py")


EAGER = "import tensorflow as tf\n\ntf.config.run_functions_eagerly(True)"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_quick_mode(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERASNAS_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        nb = nbformat.read(f, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(EAGER))
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"examples/{name} failed in quick mode:\n{err}")
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    # It ran in its own folder and showed its figures inline.
    assert os.path.isdir(tmp_path / "kerasnas_runs")
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, f"examples/{name} displayed no figure"
    text = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])
    assert "Traceback" not in text
