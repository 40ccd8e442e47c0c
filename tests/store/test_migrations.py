"""Alembic builds the schema from empty, and it matches the SQLAlchemy metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from grid.store.migrate import current, head, upgrade
from grid.store.schema import metadata
from grid.store.testing import scratch_store


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_upgrade_from_empty_matches_metadata(kind: str, tmp_path: Path) -> None:
    with scratch_store(kind, tmp_path, migrate=True) as engine:
        assert current(engine) == head()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
        upgrade(engine)  # idempotent
        assert current(engine) == head()
