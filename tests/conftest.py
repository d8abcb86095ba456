"""Shared pytest fixtures."""

import pytest

from tests import tiny


@pytest.fixture
def eager():
    """Runs the test's Keras training eagerly: see `tiny.eagerly`."""
    with tiny.eagerly():
        yield


# Modules whose tests start processes or run notebooks: the longest tests. They are
# collected first, so that pytest-xdist hands them out early and the run does not end
# with one worker finishing a long test while the other idles.
SLOW_FIRST = ("durability_test", "notebooks_test", "distribute_test", "harness_test")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        module = item.module.__name__.rpartition(".")[2]
        return SLOW_FIRST.index(module) if module in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # Stable: the order within each group is kept.
