"""The trial store when a trial's folder goes missing: nothing else is lost."""

import shutil

import numpy as np

import kerasnas as kn


def _search(tmp_path, max_trials):
    space = kn.spaces.MacroSpace(stages=(1, 1, 1))  # 27 architectures.
    archs = [space.encode(a) for a in space.enumerate()]
    table = kn.benchmarks.TabularBenchmark(
        space, {space.key(a): {"val_accuracy": i / 27} for i, a in enumerate(archs)}
    )
    return kn.Search(space, "random", max_trials=max_trials, seed=0, evaluator=table,
                     directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip


def test_a_removed_trial_folder_loses_that_trial_only(tmp_path, caplog):
    first = _search(tmp_path, 4).fit()
    scores = {r["trial_id"]: r["score"] for r in first.results()}
    shutil.rmtree(tmp_path / "p" / "trial_1")
    # Resume: the gap is reported, no id is reused, trial 2's result is intact.
    again = _search(tmp_path, 6).fit()
    assert "trials 1 are missing" in caplog.text and "trial_1" in caplog.text
    records = again.results()
    assert [r["trial_id"] for r in records] == ["0", "1", "2", "3", "4", "5", "6"]
    assert records[1]["status"] == "MISSING" and "trial_1" in records[1]["message"]
    assert [r["score"] for r in records if r["trial_id"] in ("0", "2", "3")] == [
        scores["0"],
        scores["2"],
        scores["3"],
    ]
    assert all(r["status"] == "COMPLETED" for r in records if r["trial_id"] != "1")
    assert len(set(again.oracle.trials)) == 6  # max_trials trials the store holds.
    # Every later resume reads the store the same way.
    third = _search(tmp_path, 6)
    assert [r["status"] for r in third.results()].count("MISSING") == 1
    third.fit()
    assert np.isfinite(third.best_trials(1)[0].score)
