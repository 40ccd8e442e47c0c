"""Fixtures shared by the store, ingestion and service tests: every test that takes `store` runs
on SQLite and on the real PostgreSQL (its own scratch schema, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from grid.store.testing import demo_sensors, scratch_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with scratch_store(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
def sensors(store: Engine) -> dict[str, int]:
    """Sensor ids by name of the demo site ``s1`` (see grid.store.testing.demo_sensors)."""
    return demo_sensors(store)
