"""The BUILD file must list every module, test and example that exists.

Bazel cannot fetch its Python rules offline here, so this test stands in for
`bazel build //...`: it parses the BUILD file's source lists and compares
them with the tree.
"""

import ast
import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build_targets():
    text = (ROOT / "BUILD").read_text()
    targets = {}
    for match in re.finditer(r"(py_\w+)\((.*?)\n\)", text, re.S):
        body = match.group(2)
        name = re.search(r'name = "([^"]+)"', body).group(1)
        srcs = re.search(r"srcs = (\[.*?\])", body, re.S)
        targets[name] = (match.group(1), ast.literal_eval(srcs.group(1)) if srcs else [])
    return targets


def test_build_lists_every_python_file():
    listed = {src for _, srcs in build_targets().values() for src in srcs}
    present = {
        str(p.relative_to(ROOT))
        for folder in ("kerasnas", "tests", "examples", "benchmarks", "tools")
        for p in (ROOT / folder).rglob("*.py")
    }
    assert present - listed == set(), "files missing from BUILD"
    assert listed - present == set(), "BUILD lists files that do not exist"


def test_every_test_file_has_a_py_test_target():
    targets = build_targets()
    for path in (ROOT / "tests").glob("*_test.py"):
        name = path.stem
        assert name in targets, f"no py_test target for {path.name}"
        assert targets[name][0] == "py_test"
        assert targets[name][1] == [f"tests/{path.name}"]


def test_build_is_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("gen_build", ROOT / "tools" / "gen_build.py")
    gen_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_build)
    assert (ROOT / "BUILD").read_text() == gen_build.render(), (
        "BUILD is out of date: run python tools/gen_build.py"
    )
