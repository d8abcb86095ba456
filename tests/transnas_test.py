"""TransNAS-Bench-101 micro: NAS-Bench-201's cell with four ops, and its table per task."""

import os

import numpy as np
import pytest

import kerasnas as kn
from kerasnas.benchmarks import tabular
from kerasnas.errors import OutOfSpaceError

ROOT = os.path.dirname(os.path.dirname(__file__))
TABLE = tabular.shared_data_path("transnas-bench-101_micro.csv", ROOT)
needs_table = pytest.mark.skipif(TABLE is None, reason="../shared/data holds no TransNAS table")
OPS = tabular.TRANSNAS_OPS


def test_the_cell_with_four_ops():
    space = kn.spaces.NASBench201Space(ops=list(reversed(OPS)))  # Kept in the benchmark's order.
    assert space.ops == OPS
    assert all(d.choices == OPS for d in space.decisions)
    assert space.get_config()["ops"] == list(OPS)
    assert "ops" not in kn.spaces.NASBench201Space().get_config()  # Older projects resume.
    arch = space.sample(np.random.default_rng(0))
    assert space.decode(space.encode(arch)) == arch
    assert space.encode_paths(arch).shape == (1 + 3 + 9 + 27,)  # Paths of 0-3 of 3 ops.
    full = kn.spaces.NASBench201Space()
    pooled = full.decode({**space.encode(arch), "edge_3_0": "avg_pool_3x3"})
    with pytest.raises(OutOfSpaceError):
        space.encode(pooled)


@pytest.mark.parametrize(
    "ops, message",
    [
        (["none"], "at least two"),
        (["none", "conv_9x9"], r"unknown: \['conv_9x9'\]"),
        ("none", "a list of op names"),
    ],
)
def test_bad_op_sets_are_refused(ops, message):
    with pytest.raises(ValueError, match=message):
        kn.spaces.NASBench201Space(ops=ops)


def _write(tmp_path, rows, header="task,arch,metric,val"):
    path = tmp_path / "transnas.csv"
    path.write_text(header + "\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_a_task_is_read_into_the_cells_strings(tmp_path):
    path = _write(tmp_path, [
        "class_scene,000000,top1,10.5", "class_scene,123312,top1,50.25",
        "jigsaw,123312,top1,90.0",
    ])  # fmt: skip
    bench = kn.benchmarks.load_transnas(path, "class_scene")
    assert len(bench) == 2
    key = (
        "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
        "+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|"
    )
    assert bench.best("val_accuracy") == (key, 50.25)
    values = bench.space.values_from_string(key)
    assert bench.evaluate(values) == {"val_accuracy": 50.25, "test_accuracy": 50.25}
    assert len(kn.benchmarks.load_transnas(path, "jigsaw")) == 1


def test_bad_tables_and_tasks_are_refused(tmp_path):
    good = _write(tmp_path, ["class_scene,000000,top1,1.0"])
    with pytest.raises(ValueError, match="Unknown TransNAS-Bench-101 task 'depth'"):
        kn.benchmarks.load_transnas(good, "depth")
    with pytest.raises(ValueError, match="no rows of task 'jigsaw'"):
        kn.benchmarks.load_transnas(good, "jigsaw")
    with pytest.raises(ValueError, match="space must be a NASBench201Space"):
        kn.benchmarks.load_transnas(good, space=kn.spaces.NASBench201Space())
    with pytest.raises(ValueError, match="no search_metric applies"):
        kn.benchmarks.load_shared("transnas_jigsaw", good, search_metric="val")
    bad = _write(tmp_path, ["class_scene,00400,top1,1.0"])
    with pytest.raises(ValueError, match="'00400' .* is not six digits 0-3"):
        kn.benchmarks.load_transnas(bad)
    with pytest.raises(ValueError, match=r"has no column\(s\) \['val'\]"):
        kn.benchmarks.load_transnas(_write(tmp_path, ["class_scene,000000"], "task,arch"))
    with pytest.raises(FileNotFoundError, match="KERASNAS_SHARED_DATA"):
        kn.benchmarks.load_transnas(tmp_path / "absent.csv")


@needs_table
def test_every_task_holds_all_4096_cells_and_runs_a_search(tmp_path):
    for task in kn.benchmarks.TRANSNAS_TASKS:
        bench = kn.benchmarks.load_shared(f"transnas_{task}", TABLE)
        assert len(bench) == 4**6, task
    search = kn.Search(bench.space, "local", evaluator=bench, max_trials=20, seed=0,
                       directory=tmp_path, verbose=0)  # fmt: skip
    search.fit()
    assert len(search.completed_trials()) == 20
