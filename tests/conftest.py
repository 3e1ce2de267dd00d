"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import shared_file

pytest_plugins = ["loopback_binance"]


@pytest.fixture
def eth_1h_csv() -> Path:
    return shared_file("data", "binance_ETHUSDT_1h.csv.gz")
