"""Fixtures of the ingestion tests (`store` and `sensors` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from grid.store.testing import demo_sensors, scratch_store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    """An SQLite store with the demo site, for tests that need no second dialect."""
    with scratch_store("sqlite", tmp_path) as engine:
        demo_sensors(engine)
        yield engine


@pytest.fixture
def write_csv(tmp_path: Path):  # type: ignore[no-untyped-def]
    """write_csv(name, header, rows) -> path of a CSV file in tmp_path."""

    def write(name: str, rows: list[str], header: str = "meter_id,timestamp,obis,value,unit") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write
