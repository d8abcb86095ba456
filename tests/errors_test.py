"""kerasnas.errors holds every exception; the modules that used to define them re-export them."""

import ast

import pytest

import kerasnas as kn
from kerasnas import errors
from tests.layout_test import ROOT, SOURCES


def test_every_exception_is_a_value_error_of_kerasnas_errors():
    assert sorted(errors.__all__) == sorted(
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and obj.__module__ == errors.__name__
    )
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), ValueError), name


@pytest.mark.parametrize(
    "module, name",
    [
        ("kerasnas._io", "CorruptStoreError"),
        ("kerasnas.architecture", "OutOfSpaceError"),
        ("kerasnas.search.project", "ProjectInUseError"),
        ("kerasnas.morph.channels", "MorphError"),
        ("kerasnas.benchmarks.tabular", "NotInTableError"),
        ("kerasnas", "CorruptStoreError"),
        ("kerasnas", "OutOfSpaceError"),
        ("kerasnas", "ProjectInUseError"),
    ],
)
def test_the_former_paths_name_the_same_classes(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
    assert kn.errors is errors


def test_no_exception_class_is_defined_outside_kerasnas_errors():
    # The command line's UsageError is its own: it never leaves `python -m kerasnas`.
    allowed = {ROOT / "kerasnas" / "errors.py", ROOT / "kerasnas" / "cli" / "main.py"}
    found = []
    for path in SOURCES:
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    found.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(bases)})")
    assert not found, "Define exceptions in kerasnas/errors.py:\n" + "\n".join(found)
