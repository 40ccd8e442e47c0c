"""Fixtures of the scheduler tests: the small sites and a controllable clock (see tests/api/kit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.kit import Clock, demo_sites


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return demo_sites(tmp_path_factory.mktemp("sites"))


@pytest.fixture
def clock() -> Clock:
    return Clock()
