"""Scratch stores for tests: an SQLite file or a PostgreSQL schema that is dropped afterwards.

``PG_URL`` is the server the tests use (``$GRID_TEST_PG_URL``, default the local ``test``
database). Each scratch PostgreSQL store lives in its own schema ``t_<random>``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.schema import Measure, SensorKind, metadata
from grid.store.sites import SensorSpec, add_sensors, create_site

PG_URL = os.environ.get("GRID_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_store(kind: str, directory: Path, migrate: bool = False) -> Iterator[Engine]:
    """An empty store of `kind` ("sqlite" or "postgres") with the schema created (by Alembic when
    `migrate`, else from the metadata, which is faster); removed on exit."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{directory / f'store-{uuid.uuid4().hex[:8]}.sqlite'}")
        try:
            _create(engine, migrate)
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, schema=schema)
    try:
        _create(engine, migrate)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def engine_location(engine: Engine) -> tuple[str, str | None]:
    """(URL, schema) to rebuild `engine` in another process (schema None on SQLite)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, None
    with engine.connect() as conn:
        return url, conn.execute(sa.text("SELECT current_schema()")).scalar()


def _create(engine: Engine, migrate: bool) -> None:
    if migrate:
        upgrade(engine)
    else:
        metadata.create_all(engine)


def demo_sensors(engine: Engine, site_id: str = "s1", timezone: str = "Europe/Berlin") -> dict[str, int]:
    """A small site for tests; returns sensor ids by name.

    ==================  =========  ==========  ======  ===========================
    name                meter_id   OBIS        kind    notes
    ==================  =========  ==========  ======  ===========================
    m1.import           m1         1-0:1.8.0   load    register, limit 50 kW
    m1.export           m1         1-0:2.8.0   load    register, limit 50 kW
    m2.import           m2         1-0:1.8.0   load    register, limit 50 kW
    pv1.export          pv1        1-0:2.8.0   pv      register, limit 15 kW
    m3.energy           m3         1-0:1.29.0  load    kWh per interval, 50 kW
    m4.power            m4         1-0:1.7.0   load    kW, limit 50 kW
    bat1.net            bat1       1-0:16.7.0  battery kW, negative allowed
    temp_degc           -          -           weather degC
    ==================  =========  ==========  ======  ===========================
    """
    create_site(engine, site_id, "test site", timezone, 15)
    load, pv = SensorKind.HOUSEHOLD_LOAD, SensorKind.PV
    specs = [
        SensorSpec("m1.import", load, "m1", "1-0:1.8.0", max_power_kw=50),
        SensorSpec("m1.export", load, "m1", "1-0:2.8.0", max_power_kw=50),
        SensorSpec("m2.import", load, "m2", "1-0:1.8.0", max_power_kw=50),
        SensorSpec("pv1.export", pv, "pv1", "1-0:2.8.0", max_power_kw=15),
        SensorSpec("m3.energy", load, "m3", "1-0:1.29.0", max_power_kw=50),
        SensorSpec("m4.power", load, "m4", "1-0:1.7.0", max_power_kw=50),
        SensorSpec("bat1.net", SensorKind.BATTERY, "bat1", "1-0:16.7.0", max_power_kw=20),
        SensorSpec("temp_degc", SensorKind.WEATHER, measure=Measure.TEMPERATURE),
    ]
    add_sensors(engine, site_id, specs)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, id FROM sensors WHERE site_id = :s"), {"s": site_id}).all()
    return {name: sid for name, sid in rows}


def demo_assets(engine: Engine, site_id: str = "s1") -> None:
    """Controllable assets of the test site (after :func:`demo_sensors`): battery ``bat1`` (10 kWh,
    5 kW), heat pump ``hp1`` (20 kWh store, 6 kW), charger ``ev1`` (11 kW), PV ``pv1`` (10 kWp),
    connection ``T1`` (400 kVA)."""
    from grid.store.schema import assets

    rows = [
        ("bat1", "battery", 10.0, 5.0),
        ("hp1", "heat_pump", 20.0, 6.0),
        ("ev1", "ev_charger", None, 11.0),
        ("pv1", "pv", None, 10.0),
        ("T1", "transformer", None, 400.0),
    ]
    with engine.begin() as conn:
        conn.execute(
            assets.insert(),
            [
                {"site_id": site_id, "asset_id": a, "kind": k, "connection": "T1", "capacity_kwh": c, "max_power_kw": p}
                for a, k, c, p in rows
            ],
        )
