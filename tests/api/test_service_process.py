"""The app with its scheduler on (as under `grid serve`) and the service's migration."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from grid.schedule.scheduler import job_id
from grid.store.migrate import current, head
from grid.store.schema import metadata
from grid.store.testing import scratch_store

SERVICE_TABLES = {"api_keys", "plans", "schedule_runs"}


def test_scheduler_runs_inside_the_app(store: Engine, sites: dict[str, Path]) -> None:
    settings = Settings(sites=sites, horizon_hours=2, scheduler_enabled=True, mqtt_enabled=False)
    app = create_app(settings, engine=store, migrate=False)
    with TestClient(app) as client:
        scheduler = app.state.ctx.scheduler
        assert scheduler.running and scheduler.get_job(job_id("demo")) is not None
        assert client.get("/healthz").json()["scheduler_running"] is True
    assert not scheduler.running


def test_migration_creates_the_service_tables(tmp_path: Path) -> None:
    with scratch_store("sqlite", tmp_path, migrate=True) as engine:
        assert current(engine) == head()  # 0003 made the service tables; later ones add more
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert [d for d in diff if SERVICE_TABLES & set(str(d).split("'"))] == []
        app = create_app(Settings(sites={}, scheduler_enabled=False, mqtt_enabled=False), engine=engine)
        assert app.state.ctx.engine is engine  # upgrade on an up-to-date database is a no-op
