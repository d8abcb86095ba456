"""The code's layout rules (docs/architecture.md), checked on the source.

- no import cycles between kerasnas's modules (module-level imports; type-only
  imports under `if TYPE_CHECKING:` do not count);
- the trial runner (`kerasnas/training/`) imports no particular strategy, only the
  strategy interface (`kerasnas.oracles.base`); the facade (`kerasnas/search/`) that
  and the registry of strategy names (the `kerasnas.oracles` package), nothing else
  of `kerasnas.oracles` (imports in functions count too);
- keras-tuner is used through its public names only, in the tests too;
- output goes through the `kerasnas` logger: `print` only in report.py and the CLI;
- no module over 600 lines;
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


def imported_modules(path: pathlib.Path, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The kerasnas modules an import statement of the file at `path` names."""
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    else:
        package = (
            module_name(path)
            if path.name == "__init__.py"
            else module_name(path).rpartition(".")[0]
        )
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        found = set()
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            found.add(candidate if candidate in MODULES else base)
    return {m for m in found if m in MODULES}


def module_level_imports(path: pathlib.Path) -> set[str]:
    """The kerasnas modules a file imports when it is imported (not in functions)."""
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and not is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(imported_modules(path, node))

    visit(ast.parse(path.read_text()).body)
    return found


def all_imports(path: pathlib.Path) -> set[str]:
    """The kerasnas modules a file imports anywhere (in functions too), type-only imports aside."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and is_type_checking(node)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    return {
        module
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in type_only
        for module in imported_modules(path, node)
    }


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


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


# What each layer may import of kerasnas.oracles: the trial runner the strategy interface
# only, the facade that and the registry of strategy names (the package, for STRATEGIES).
ORACLE_IMPORTS = {
    "kerasnas.training": {"kerasnas.oracles.base"},
    "kerasnas.search": {"kerasnas.oracles", "kerasnas.oracles.base"},
}
# The strategies' own code, which neither layer may import at all.
STRATEGY_MODULES = ("kerasnas.morph", "kerasnas.oneshot", "kerasnas.policy")


def check_layers(imports: dict[str, set[str]]) -> list[str]:
    """The imports of `imports` (module -> modules) that break the rules above."""
    bad = []
    for name, modules in sorted(imports.items()):
        for layer, allowed in ORACLE_IMPORTS.items():
            if not within(name, layer):
                continue
            for imported in sorted(modules):
                strategy = within(imported, "kerasnas.oracles") and imported not in allowed
                if strategy or any(within(imported, m) for m in STRATEGY_MODULES):
                    bad.append(f"{name} imports {imported}")
    return bad


def test_the_layer_check_is_exact():
    assert check_layers(
        {
            "kerasnas.training.runner": {"kerasnas.oracles.base", "kerasnas.oracles"},
            "kerasnas.search.options": {"kerasnas.oracles", "kerasnas.oracles.halving"},
            "kerasnas.search.facade": {"kerasnas.oracles.base", "kerasnas.policy"},
            "kerasnas.search": {"kerasnas.oneshot.methods", "kerasnas.report"},
        }
    ) == [
        "kerasnas.search imports kerasnas.oneshot.methods",
        "kerasnas.search.facade imports kerasnas.policy",
        "kerasnas.search.options imports kerasnas.oracles.halving",
        "kerasnas.training.runner imports kerasnas.oracles",
    ]


def test_the_facade_and_the_runner_import_no_particular_strategy():
    imports = {name: all_imports(path) for name, path in MODULES.items()}
    bad = check_layers(imports)
    assert not bad, "Call the strategy's hooks instead:\n" + "\n".join(bad)


def test_keras_tuner_through_public_names_only():
    others = [
        path
        for folder in ("tests", "benchmarks", "examples", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != pathlib.Path(__file__).resolve()
    ]
    for path in [*SOURCES, *others]:
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


def test_modules_stay_small():
    for path in SOURCES:
        lines = path.read_text().splitlines()
        assert len(lines) <= 600, f"{path} has {len(lines)} lines"


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
