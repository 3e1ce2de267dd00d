"""One world for every strategy test (see tests/strategy_world.py)."""

from __future__ import annotations

import pytest
from strategy_world import World, build_world


@pytest.fixture(scope="session")
def world() -> World:
    return build_world()
