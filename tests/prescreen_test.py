"""Tests of zero-cost pre-screening (`strategy="prescreen"`)."""

import json
import os

import pytest

import kerasnas as kn
from tests import tiny


def test_prescreen_trains_the_best_scored_of_its_pool_and_keeps_its_ranking(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()

    def run(max_trials):
        s = kn.Search(space, "prescreen", pool_size=6, proxy="naswot", max_trials=max_trials,
                      seed=0, directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
        s.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=64)
        return s

    search = run(2)
    with open(tmp_path / "p" / "prescreen.json") as f:
        ranking = json.load(f)["ranking"]
    assert len(ranking) == 6 and len({e["hash"] for e in ranking}) == 6
    scores = [e["score"] for e in ranking]
    assert scores == sorted(scores, reverse=True)
    records = search.results()
    assert [r["hash"] for r in records] == [e["hash"] for e in ranking[:2]]  # Best first.
    assert [r["details"]["prescreen"]["rank"] for r in records] == [1, 2]
    # A resumed search goes on down the ranking without scoring again.
    mtime = os.path.getmtime(tmp_path / "p" / "prescreen.json")
    resumed = run(3)
    assert os.path.getmtime(tmp_path / "p" / "prescreen.json") == mtime
    assert [r["hash"] for r in resumed.results()] == [e["hash"] for e in ranking[:3]]


def test_prescreen_scores_match_the_proxies_of_the_untrained_network(tmp_path, eager):
    (x, y), (xv, yv) = tiny.digits(200, 100)
    space = tiny.fast_space()
    s = kn.Search(space, "prescreen", pool_size=3, proxy="params", max_trials=1, seed=0,
                  directory=str(tmp_path), project_name="p", verbose=0)  # fmt: skip
    s.fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=64)
    for entry in s.oracle.ranking:
        model = space.build_model(space.decode(entry["values"]))
        assert entry["score"] == model.count_params()


def test_prescreen_arguments_are_checked():
    space = tiny.fast_space()
    with pytest.raises(ValueError, match="proxy must be one of"):
        kn.Search(space, "prescreen", proxy="accuracy")
    with pytest.raises(ValueError, match="pool_size must be an integer >= 1"):
        kn.Search(space, "prescreen", pool_size=0)
