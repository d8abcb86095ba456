"""The code's layout rules (docs/architecture.md), checked on the source.

- no import cycles between kerasnas's modules (module-level imports; type-only
  imports under `if TYPE_CHECKING:` do not count);
- the facade (`kerasnas/search/`) and the trial runner (`kerasnas/training/`)
  import no particular strategy, only the strategy interface;
- keras-tuner is used through its public names only;
- output goes through the `kerasnas` logger: `print` only in report.py and the CLI;
- no module over 600 lines, no class over 300;
- docstring `Args:` entries are `name: description` pairs (mkdocs --strict).
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kerasnas"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SOURCES}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(path: pathlib.Path) -> set[str]:
    """The kerasnas modules a file imports when it is imported (not in functions)."""
    found = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and not is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in MODULES else base)

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m in MODULES}


def graph() -> dict[str, set[str]]:
    # The top-level package imports everything for the public API; it is not a node.
    return {
        name: module_level_imports(path) - {"kerasnas"}
        for name, path in MODULES.items()
        if name != "kerasnas"
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    assert find_cycle(graph()) is None


STRATEGY_MODULES = ("kerasnas.morph", "kerasnas.oneshot", "kerasnas.policy")


def test_the_facade_and_the_runner_import_no_particular_strategy():
    for name, imports in graph().items():
        if not name.startswith(("kerasnas.search", "kerasnas.training")):
            continue
        for imported in imports:
            strategy = (
                imported.startswith("kerasnas.oracles.") and imported != "kerasnas.oracles.base"
            )
            assert not strategy and not imported.startswith(STRATEGY_MODULES), (
                f"{name} imports {imported}: call the strategy's hooks instead"
            )


def test_keras_tuner_through_public_names_only():
    for path in SOURCES:
        assert "keras_tuner.src" not in path.read_text(), f"{path} imports keras_tuner.src"


def test_print_only_in_the_report_module_and_the_cli():
    allowed = {"kerasnas.report", "kerasnas.benchmarks.__main__"}
    for name, path in MODULES.items():
        if name in allowed or name.startswith("kerasnas.cli"):
            continue
        calls = [
            node.lineno
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path} calls print() on lines {calls}: use the kerasnas logger"


def test_modules_and_classes_stay_small():
    for path in SOURCES:
        lines = path.read_text().splitlines()
        assert len(lines) <= 600, f"{path} has {len(lines)} lines"
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                assert size <= 300, f"{path}: class {node.name} has {size} lines"


def test_docstring_arguments_are_name_description_pairs():
    """Each `Args:` entry reads `name: description` (mkdocs --strict rejects others)."""
    import inspect
    import re

    entry = re.compile(r"^\*{0,2}\w+( \([^)]*\))?:( |$)")
    bad = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            doc = ast.get_docstring(node, clean=False)
            if not doc:
                continue
            lines = inspect.cleandoc(doc).splitlines()
            for start, line in enumerate(lines):
                if line.strip() not in ("Args:", "Arguments:"):
                    continue
                header_indent = len(line) - len(line.lstrip())
                entry_indent = None
                for item in lines[start + 1 :]:
                    if not item.strip():
                        break
                    indent = len(item) - len(item.lstrip())
                    if indent <= header_indent:
                        break
                    entry_indent = entry_indent or indent
                    if indent == entry_indent and not entry.match(item.strip()):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {item.strip()!r}")
    assert not bad, "Args entries that are not `name: description`:\n" + "\n".join(bad)
