"""docs/architecture.md's example strategy: one file plus a registry line is a strategy."""

import os
import pathlib
import re
import types

import pytest

import kerasnas as kn

ROOT = pathlib.Path(__file__).resolve().parent.parent
TABLE = kn.benchmarks.macro_table_path(str(ROOT))


def example_strategy() -> type:
    """The `HillClimbOracle` of docs/architecture.md, run from the page's own code."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Adding a strategy", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.splitlines()) <= 35, "the example should stay short"
    module = types.ModuleType("hill_climb")
    exec(compile(code, "docs/architecture.md", "exec"), module.__dict__)  # noqa: S102
    return module.HillClimbOracle


@pytest.fixture
def registered():
    cls = example_strategy()
    kn.oracles.register("hill_climb", cls)
    try:
        yield cls
    finally:
        del kn.oracles.STRATEGIES["hill_climb"]


def test_register_refuses_what_is_not_a_strategy():
    with pytest.raises(ValueError, match="NasOracle"):
        kn.oracles.register("nothing", dict)
    with pytest.raises(ValueError, match="already"):
        kn.oracles.register("random", kn.oracles.EvolutionOracle)


@pytest.mark.skipif(TABLE is None, reason="../shared/data/nas-bench-macro_cifar10.json is absent")
def test_the_example_strategy_climbs_on_the_macro_table(registered, tmp_path):
    bench = kn.benchmarks.load_macro(TABLE)
    search = kn.Search(
        bench.space,
        strategy="hill_climb",
        objective="val_accuracy",
        max_trials=30,
        seed=0,
        evaluator=bench,
        directory=os.fspath(tmp_path),
        verbose=0,
        initial_trials=3,
    )
    search.fit()
    assert isinstance(search.oracle, registered)
    records = search.results()
    assert len(records) == 30 and len({r["hash"] for r in records}) == 30
    # After the random start each trial is one mutation of the best architecture before it
    # (or a random restart at a local optimum, rare on this table within 30 trials).
    space = bench.space
    keys = [space.key(space.encode(kn.Architecture.from_json(r["architecture"]))) for r in records]
    scores = [r["score"] for r in records]
    mutations = 0
    for i in range(3, 30):
        best = keys[max(range(i), key=lambda j: scores[j])]
        mutations += sum(a != b for a, b in zip(best, keys[i], strict=True)) == 1
    assert mutations >= 20
    # Climbing beats the random start.
    assert max(scores) > max(scores[:3])
