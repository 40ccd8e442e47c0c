"""Sites and sensors in the store: created directly or registered from a site YAML.

A sensor is identified by (site, meter_id, obis) or by its name within the site. Registering a
:class:`grid.domain.Site` creates, for each asset, the meters a Smart Meter Gateway would deliver:

=============  ======================  ============================  =========================
asset          meter_id                OBIS                          kind
=============  ======================  ============================  =========================
household      ``household.meter_id``  1-0:1.8.0, 1-0:2.8.0          household_load
PV array       array id                1-0:2.8.0                     pv
battery        battery id              1-0:1.8.0, 1-0:2.8.0          battery
EV charger     charger id              1-0:1.8.0                     ev_charger
heat pump      heat pump id            1-0:1.8.0                     heat_pump
connection     connection id           1-0:1.8.0, 1-0:2.8.0          transformer
=============  ======================  ============================  =========================

plus one weather sensor ``temp_degc`` (no meter). Each gets a plausibility limit (kW) from its
rating times :data:`POWER_LIMIT_FACTOR`; households get :data:`HOUSEHOLD_LIMIT_KW`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.domain import Site
from grid.errors import InputError
from grid.store.catalog import EXPORT_REGISTER, IMPORT_REGISTER, OBIS, UNITS
from grid.store.schema import Measure, SensorKind
from grid.store.schema import assets as assets_table
from grid.store.schema import sensors as sensors_table
from grid.store.schema import sites as sites_table

#: A measured mean power above rating x this factor is implausible.
POWER_LIMIT_FACTOR = 1.5
#: Plausibility limit for a household connection (3 x 63 A x 230 V is about 43 kW).
HOUSEHOLD_LIMIT_KW = 50.0


@dataclass(frozen=True)
class SensorSpec:
    """A sensor to create. `unit` defaults to the canonical unit of `measure` (from the OBIS
    code when given); `max_power_kw` is the plausibility limit of its mean power (None: none)."""

    name: str
    kind: SensorKind
    meter_id: str | None = None
    obis: str | None = None
    measure: Measure | None = None
    unit: str | None = None
    direction: int | None = None
    connection: str | None = None
    asset_id: str | None = None
    max_power_kw: float | None = None
    allow_negative: bool | None = None

    def row(self, site_id: str) -> dict[str, object]:
        info = OBIS.get(self.obis or "")
        measure = self.measure or (info.measure if info else None)
        if measure is None:
            raise InputError(f"sensor {self.name}", "needs a measure or a known OBIS code", self.obis)
        allow_negative = self.allow_negative
        if allow_negative is None:
            allow_negative = info.allow_negative if info else measure in (Measure.TEMPERATURE,)
        return {
            **asdict(self),
            "site_id": site_id,
            "kind": SensorKind(self.kind).value,
            "measure": Measure(measure).value,
            "unit": self.unit or UNITS[Measure(measure)],
            "direction": self.direction if self.direction is not None else (info.direction if info else 1),
            "allow_negative": allow_negative,
        }


def create_site(
    engine: Engine,
    site_id: str,
    name: str = "",
    timezone: str = "Europe/Berlin",
    resolution_min: int = 15,
) -> None:
    """Create the site row, or update its name, time zone and resolution if it exists."""
    with engine.begin() as conn:
        _upsert_site(conn, site_id, name, timezone, resolution_min)


def _upsert_site(conn: Connection, site_id: str, name: str, timezone: str, resolution_min: int) -> None:
    exists = conn.execute(sa.select(sites_table.c.id).where(sites_table.c.id == site_id)).first()
    values = {"name": name, "timezone": timezone, "resolution_min": resolution_min}
    if exists:
        conn.execute(sites_table.update().where(sites_table.c.id == site_id).values(**values))
    else:
        conn.execute(sites_table.insert().values(id=site_id, created_at=pd.Timestamp.now("UTC"), **values))


def add_sensors(engine: Engine, site_id: str, specs: list[SensorSpec]) -> int:
    """Create the sensors that do not exist yet (matched by name); return how many were new.

    Existing sensors keep their id and readings; their metadata is updated to the spec.
    """
    with engine.begin() as conn:
        return _add_sensors(conn, site_id, specs)


def _add_sensors(conn: Connection, site_id: str, specs: list[SensorSpec]) -> int:
    existing = {
        row.name: row.id
        for row in conn.execute(
            sa.select(sensors_table.c.name, sensors_table.c.id).where(sensors_table.c.site_id == site_id)
        )
    }
    new = 0
    now = pd.Timestamp.now("UTC")
    for spec in specs:
        row = spec.row(site_id)
        if spec.name in existing:
            conn.execute(sensors_table.update().where(sensors_table.c.id == existing[spec.name]).values(**row))
        else:
            conn.execute(sensors_table.insert().values(created_at=now, **row))
            new += 1
    return new


def site_sensor_specs(site: Site) -> list[SensorSpec]:
    """The sensors a site YAML implies (see the module docstring)."""
    specs: list[SensorSpec] = []

    def meter(asset_id: str, meter_id: str, kind: SensorKind, obis: list[str], conn: str, limit_kw: float) -> None:
        for code in obis:
            suffix = "import" if code == IMPORT_REGISTER else "export"
            specs.append(
                SensorSpec(
                    name=f"{asset_id}.{suffix}",
                    kind=kind,
                    meter_id=meter_id,
                    obis=code,
                    connection=conn,
                    asset_id=asset_id,
                    max_power_kw=limit_kw,
                )
            )

    both = [IMPORT_REGISTER, EXPORT_REGISTER]
    for h in site.households:
        meter(h.id, h.meter_id, SensorKind.HOUSEHOLD_LOAD, both, h.connection, HOUSEHOLD_LIMIT_KW)
    for pv in site.pv_arrays:
        meter(
            pv.id,
            pv.id,
            SensorKind.PV,
            [EXPORT_REGISTER],
            pv.connection,
            pv.kwp * POWER_LIMIT_FACTOR,
        )
    for b in site.batteries:
        limit = max(b.charge_kw, b.discharge_kw) * POWER_LIMIT_FACTOR
        meter(b.id, b.id, SensorKind.BATTERY, both, b.connection, limit)
    for ev in site.ev_chargers:
        meter(
            ev.id,
            ev.id,
            SensorKind.EV_CHARGER,
            [IMPORT_REGISTER],
            ev.connection,
            ev.max_kw * POWER_LIMIT_FACTOR,
        )
    for hp in site.heat_pumps:
        limit = hp.electric_kw * POWER_LIMIT_FACTOR
        meter(hp.id, hp.id, SensorKind.HEAT_PUMP, [IMPORT_REGISTER], hp.connection, limit)
    for c in site.connections:
        meter(c.id, c.id, SensorKind.TRANSFORMER, both, c.id, c.rated_kva * POWER_LIMIT_FACTOR)
    specs.append(SensorSpec(name="temp_degc", kind=SensorKind.WEATHER, measure=Measure.TEMPERATURE))
    return specs


def register_site(engine: Engine, site: Site) -> int:
    """Create or update `site`, its sensors and assets in one transaction, and seed its YAML's EV
    sessions the store does not hold yet; return how many sensors are new."""
    with engine.begin() as conn:
        info = site.site
        from grid.store.live import seed_sessions  # live reads sites: imported here, not at the top

        _upsert_site(conn, info.id, info.name, info.timezone, info.resolution_min)
        _replace_assets(conn, info.id, site_asset_rows(site))
        new = _add_sensors(conn, info.id, site_sensor_specs(site))
        seed_sessions(conn, site)
        return new


def site_asset_rows(site: Site) -> list[dict[str, object]]:
    """The controllable assets and connections of `site` as rows of the ``assets`` table: telemetry is checked
    against them (an unknown asset, a state of charge above the capacity)."""
    rows: list[dict[str, object]] = []

    def add(
        asset_id: str,
        kind: SensorKind,
        conn: str,
        capacity: float | None,
        power: float,
        temps: tuple[Any, Any] = (None, None),
    ) -> None:
        rows.append(
            {
                "asset_id": asset_id,
                "kind": kind.value,
                "connection": conn,
                "capacity_kwh": capacity,
                "max_power_kw": power,
                "temp_empty_degc": temps[0],
                "temp_full_degc": temps[1],
            }
        )

    for b in site.batteries:
        add(b.id, SensorKind.BATTERY, b.connection, b.capacity_kwh, max(b.charge_kw, b.discharge_kw))
    for hp in site.heat_pumps:
        add(
            hp.id,
            SensorKind.HEAT_PUMP,
            hp.connection,
            hp.store_kwh,
            hp.electric_kw,
            (hp.store_empty_degc, hp.store_full_degc),
        )
    for ev in site.ev_chargers:
        add(ev.id, SensorKind.EV_CHARGER, ev.connection, None, ev.max_kw)
    for pv in site.pv_arrays:
        add(pv.id, SensorKind.PV, pv.connection, None, pv.kwp)
    for c in site.connections:  # limit orders name them
        add(c.id, SensorKind.TRANSFORMER, c.id, None, c.rated_kva)
    return rows


def _replace_assets(conn: Connection, site_id: str, rows: list[dict[str, object]]) -> None:
    conn.execute(assets_table.delete().where(assets_table.c.site_id == site_id))
    if rows:
        conn.execute(assets_table.insert(), [{"site_id": site_id, **row} for row in rows])


@dataclass(frozen=True)
class SiteRow:
    """A site as stored."""

    id: str
    name: str
    timezone: str
    resolution_min: int


def get_site(conn: Connection | Engine, site_id: str) -> SiteRow:
    """The stored site `site_id`; raise :class:`InputError` if there is none."""
    query = sa.select(sites_table).where(sites_table.c.id == site_id)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            row = c.execute(query).first()
    else:
        row = conn.execute(query).first()
    if row is None:
        raise InputError("site", "unknown site (register it from its YAML first)", site_id)
    return SiteRow(row.id, row.name, row.timezone, row.resolution_min)


SENSOR_COLUMNS = [
    "id",
    "name",
    "meter_id",
    "obis",
    "kind",
    "measure",
    "unit",
    "direction",
    "connection",
    "asset_id",
    "max_power_kw",
    "allow_negative",
]


def sensor_frame(conn: Connection | Engine, site_id: str) -> pd.DataFrame:
    """All sensors of a site, indexed by sensor id (columns :data:`SENSOR_COLUMNS`)."""
    query = sa.select(*[sensors_table.c[c] for c in SENSOR_COLUMNS]).where(sensors_table.c.site_id == site_id)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            rows = c.execute(query).all()
    else:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=SENSOR_COLUMNS)
    frame["allow_negative"] = frame["allow_negative"].astype(bool)
    return frame.set_index("id", drop=False)
