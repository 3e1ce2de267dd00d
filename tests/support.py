"""Helpers for tests: where ../shared lives, and a skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_file(*parts: str) -> Path:
    """Path of a file in ../shared, or a skip naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need ../shared beside the project")
    return path
