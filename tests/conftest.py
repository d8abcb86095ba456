"""Shared pytest fixtures."""

import pytest

from tests import tiny


@pytest.fixture
def eager():
    """Runs the test's Keras training eagerly: see `tiny.eagerly`."""
    with tiny.eagerly():
        yield
