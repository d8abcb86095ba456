"""Generates the Colab notebooks of `examples/` from their plain `.py` twins.

Each example is written once, as a Python script that runs on a server
(`python examples/controller.py`), in the "percent" format that jupytext and
VS Code also read: `# %%` starts a code cell and `# %% [markdown]` a markdown
cell whose lines are comments. The module docstring becomes the notebook's
first markdown cell (its first line the title), followed by an "Open in
Colab" badge and a cell that installs kerasnas where it is missing.

    python examples/make_notebooks.py           # rewrites examples/*.ipynb
    python examples/make_notebooks.py --check   # exits 1 when one is out of date

Notebooks are stored without outputs; `tests/notebooks_test.py` checks that
they match their sources and runs each one in quick mode.
"""

from __future__ import annotations

import ast
import os
import sys

import nbformat

EXAMPLES = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = "kerasnas/kerasnas"
COLAB = "https://colab.research.google.com/github/{repo}/blob/main/examples/{name}"
GITHUB = f"https://github.com/{REPOSITORY}/blob/main/examples"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: Notebook name -> (its `.py` source in examples/, whether Colab should give it a GPU).
NOTEBOOKS = {
    "quickstart.ipynb": ("quickstart_tfds.py", True),
    "controller.ipynb": ("controller.py", True),
    "compare_strategies.ipynb": ("compare_strategies.py", False),
    "multi_gpu.ipynb": ("multi_gpu.py", True),
    "morphism.ipynb": ("morphism.py", True),
    "oneshot.ipynb": ("oneshot.py", True),
    "rnn_cell.ipynb": ("rnn_cell.py", True),
}
#: Environment variable of the quick mode (tiny budgets, offline data) that CI uses.
QUICK_ENV = "KERASNAS_QUICK"

INSTALL = f"""\
# Installs kerasnas (e.g. on Colab); skipped where it is already installed.
import importlib.util

if importlib.util.find_spec("kerasnas") is None:
    %pip install -q git+https://github.com/{REPOSITORY}"""

CELL = "# %%"
MARKDOWN = "# %% [markdown]"


def parse(text: str, source: str) -> tuple[str, list[tuple[str, str]]]:
    """Splits a percent-format script into its docstring and `(kind, text)` cells."""
    module = ast.parse(text, filename=source)
    docstring = ast.get_docstring(module, clean=True)
    if not docstring:
        raise ValueError(f"{source} needs a module docstring: it becomes the notebook's intro.")
    body = text.splitlines()[module.body[0].end_lineno :]
    cells: list[tuple[str, list[str]]] = []
    for number, line in enumerate(body, module.body[0].end_lineno + 1):
        if line.startswith(CELL):
            if line.strip() not in (CELL, MARKDOWN):
                raise ValueError(
                    f"{source}:{number}: a cell marker is '{CELL}' or '{MARKDOWN}'. "
                    f"Received: {line!r}."
                )
            cells.append(("markdown" if line.strip() == MARKDOWN else "code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown" and line and not line.startswith("#"):
                raise ValueError(
                    f"{source}:{number}: a markdown cell holds only comment lines; start a "
                    f"code cell with '{CELL}' first. Received: {line!r}."
                )
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif line.strip():
            raise ValueError(
                f"{source}:{number}: code after the docstring must sit in a cell; "
                f"start it with '{CELL}'."
            )
    return docstring, [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def notebook(name: str) -> nbformat.NotebookNode:
    """The notebook `name` of `NOTEBOOKS`, built from its source."""
    source, gpu = NOTEBOOKS[name]
    with open(os.path.join(EXAMPLES, source), encoding="utf-8") as f:
        docstring, cells = parse(f.read(), source)
    title, _, intro = docstring.partition("\n")
    link = COLAB.format(repo=REPOSITORY, name=name)
    head = (
        f"# {title.rstrip('.')}\n\n[![Open In Colab]({BADGE})]({link})\n\n{intro.strip()}\n\n"
        f"This notebook is generated from [`examples/{source}`]({GITHUB}/{source}), which runs "
        f"as a plain script too. Set `{QUICK_ENV}=1` for a tiny offline run (what CI does)."
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(head), nbformat.v4.new_code_cell(INSTALL)]
    for kind, text in cells:
        if not text:
            continue
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(new(text))
    for number, cell in enumerate(nb.cells):
        cell.id = f"{os.path.splitext(name)[0]}-{number}"  # Stable ids: no diffs on regeneration.
    nb.metadata = {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if gpu:
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"]["gpuType"] = "T4"
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(name)) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv[1:]
    stale = []
    for name in NOTEBOOKS:
        path = os.path.join(EXAMPLES, name)
        text = render(name)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current == text:
            continue
        stale.append(name)
        if not check:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote examples/{name}")
    if check and stale:
        print(
            f"out of date: {', '.join(stale)}; run python examples/make_notebooks.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
