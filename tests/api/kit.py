"""Shared pieces of the service tests: small demo sites, a controllable clock, an app factory."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from grid.demo import generate_demo
from grid.schedule.runner import PlanningService

#: generate_demo's default start (2026-01-14T00:00+01:00) is 2026-01-13T23:00Z; 12 h of inputs.
T0 = dt.datetime(2026, 1, 14, 1, 7, tzinfo=dt.UTC)
HOURS = 3.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, minutes: float) -> dt.datetime:
        self.now += dt.timedelta(minutes=minutes)
        return self.now


def demo_sites(directory: Path) -> dict[str, Path]:
    """Two small sites ``demo`` and ``north`` (same households, different id), 12 h of inputs."""
    demo = generate_demo(directory / "demo", n_households=20, hours=12)
    north_dir = directory / "north"
    shutil.copytree(demo.parent, north_dir)
    north = north_dir / demo.name
    north.write_text(north.read_text(encoding="utf-8").replace("\n  id: demo\n", "\n  id: north\n", 1), "utf-8")
    return {"demo": demo, "north": north}


def make_app(
    engine: Engine,
    sites: dict[str, Path],
    clock: Clock,
    auth_cache_s: float = 0.0,
    solve_in_subprocess: bool = False,
    **kwargs: Any,
) -> FastAPI:
    """The real app on `engine` (schema already created), no scheduler and no MQTT; keys are
    checked against the database on every request unless `auth_cache_s` is given. Keyword
    arguments that name a setting (``max_body_bytes=...``) go to the settings, the others to
    :func:`api.app.create_app`."""
    overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in Settings.model_fields}
    settings = Settings(
        database_url="sqlite://",
        sites=sites,
        horizon_hours=HOURS,
        solver_time_limit_s=20,
        scheduler_enabled=False,
        mqtt_enabled=False,
        auth_cache_s=auth_cache_s,
        solve_in_subprocess=solve_in_subprocess,
        **overrides,
    )
    return create_app(settings, engine=engine, clock=clock, migrate=False, **kwargs)


def service(app: FastAPI) -> PlanningService:
    svc: PlanningService = app.state.ctx.service
    return svc


def reading(
    meter: str = "MTR-H001", ts: str = "2026-01-14T00:15:00+00:00", value: float | str = 100.0
) -> dict[str, Any]:
    return {"meter_id": meter, "obis": "1-0:1.8.0", "ts": ts, "value": value, "unit": "kWh"}


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two small sites (session-wide; they are only read)."""
    return demo_sites(tmp_path_factory.mktemp("sites"))


@pytest.fixture
def clock() -> Clock:
    return Clock()
