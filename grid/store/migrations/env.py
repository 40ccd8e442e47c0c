"""Alembic environment: run migrations on the engine handed over by grid.store.migrate, or on
``$GRID_DATABASE_URL`` (default ./quartiere.sqlite) when run from the ``alembic`` command line."""

from __future__ import annotations

from alembic import context

from grid.store.engine import make_engine
from grid.store.schema import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
