"""Live data in the store: device state, EV sessions, published prices and weather, limit orders.

The read functions are what the planner calls (times are tz-aware UTC; a value stamped t covers
[t, t + resolution)):

* :func:`latest_states` — the latest measured state of charge / heat-store content per asset;
* :func:`device_power` — measured device power (kW, > 0 drawn from the grid) per interval;
* :func:`sessions_in` — EV sessions plugged in during a period and not plugged out;
* :func:`prices_as_of` — the price series as published by a given instant, and beyond the last
  published price a named forecast (``source`` says which, per interval);
* :func:`weather_as_of` — a published weather quantity, the same way (no forecast fill);
* :func:`active_orders` — the grid operator's limit orders in force during a period.

Prices and weather are beliefs: a later publication for the same interval is a new row, so what was
known at any instant can be read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.domain import EVSession, Site
from grid.errors import InputError, InputErrors
from grid.ingest.report import IngestReport, Rejected, Source
from grid.store import bulk
from grid.store.engine import write_transaction
from grid.store.schema import (
    assets,
    batches,
    device_telemetry,
    ev_session_events,
    ev_sessions,
    limit_orders,
    price_points,
    rejected_records,
    weather_points,
)
from grid.store.sites import get_site
from grid.timeindex import iso, to_utc

TimeLike = pd.Timestamp | dt.datetime | str

#: names of the price forecasts beyond the last published price
SAME_HOUR_LAST_DAY = "same_hour_last_day"  # the same local time on the latest day with a published price
LAST_PRICE = "last_price"  # the last published price, held
PRICE_FORECASTS = (SAME_HOUR_LAST_DAY, LAST_PRICE)
#: how far back a price forecast looks for a published day
FORECAST_LOOKBACK_DAYS = 7
STATE_QUANTITIES = ("soc_kwh", "store_kwh")


def _db_time(value: TimeLike) -> dt.datetime:
    stamp: dt.datetime = to_utc(value).to_pydatetime()
    return stamp


def _rows(engine: Engine | Connection, query: Any) -> list[Any]:
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    return list(engine.execute(query).all())


# --- assets and batches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    """A controllable asset or connection of a site, as registered from its YAML."""

    asset_id: str
    kind: str
    connection: str | None
    capacity_kwh: float | None
    max_power_kw: float | None
    temp_empty_degc: float | None = None  # a heat store reporting temperature: empty and full at
    temp_full_degc: float | None = None


def site_assets(engine: Engine | Connection, site_id: str) -> dict[str, Asset]:
    """The site's assets and connections by id (empty before the site is registered)."""
    a = assets.c
    query = sa.select(
        a.asset_id, a.kind, a.connection, a.capacity_kwh, a.max_power_kw, a.temp_empty_degc, a.temp_full_degc
    ).where(a.site_id == site_id)
    # the fields by position, in Asset's order (a Row's attribute per field cost more than the query)
    return {r[0]: Asset(*r) for r in _rows(engine, query)}


def open_batch(conn: Connection, site_id: str, source: Source, now: dt.datetime) -> int:
    """A batch row (as the meter ingestion opens one): rejected records hang off it."""
    result = conn.execute(
        batches.insert().values(
            site_id=site_id, source_kind=source.kind, source=source.name, checksum=source.checksum, started_at=now
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def close_batch(conn: Connection, site_id: str, batch_id: int, report: IngestReport, now: dt.datetime) -> None:
    """Store the batch's rejected records and its counts (as :mod:`grid.ingest.writer` does)."""
    bulk.insert_rows(
        conn,
        rejected_records,
        (
            {
                "batch_id": batch_id,
                "site_id": site_id,
                "source": report.source.name,
                "location": r.where,
                "line": r.line,
                "field": r.field,
                "value": r.value,
                "reason": r.reason,
                "raw": r.raw,
                "rejected_at": now,
            }
            for r in report.rejected
        ),
    )
    conn.execute(
        batches.update()
        .where(batches.c.id == batch_id)
        .values(
            rows_read=report.rows_read,
            accepted=report.accepted,
            duplicates=report.duplicates,
            revised=report.revised,
            rejected=len(report.rejected),
            committed_at=now,
        )
    )
    report.batch_id = batch_id


def store_rejections(engine: Engine, site_id: str, report: IngestReport, now: dt.datetime) -> None:
    """A batch holding only `report`'s rejected records (a refused EV-session event, say)."""
    with write_transaction(engine) as conn:
        batch_id = open_batch(conn, site_id, report.source, now)
        close_batch(conn, site_id, batch_id, report, now)


def keep_refusal(
    engine: Engine, site_id: str, source: Source, error: InputError | InputErrors, raw: str, now: TimeLike
) -> IngestReport:
    """Store a refused document or request (an EV-session event, a price publication, a limit
    order) as rejected records, one per problem, where meter rejects go; returns the report."""
    errors = error.errors if isinstance(error, InputErrors) else [error]
    report = IngestReport(source, rows_read=max(1, len(errors)))
    for err in errors:
        value = str(err.value)[:200] if err.has_value else None
        report.rejected.append(Rejected(source.name, err.where or "payload", value, err.what, raw[:100_000]))
    store_rejections(engine, site_id, report, _db_time(now))
    return report


# --- device telemetry ------------------------------------------------------------------------------


def latest_states(
    engine: Engine, site: str, at: TimeLike, assets: Sequence[str] | None = None
) -> dict[str, tuple[float, str, pd.Timestamp]]:
    """Per asset, the latest measured state at or before `at`: ``(value_kwh, unit, measured_at)``.

    Batteries report ``soc_kwh``, heat pumps ``store_kwh`` (the heat store's content); both are
    kWh (a state given in % was converted with the capacity on ingest). An asset with both gets
    its latest one.

    With `assets`, only those (the same entries): the store then finds each asset's latest state
    by its key (asset, quantity, time), where all assets means going through the site's whole
    state history (~60 k rows after a simulated week of the demo site, read every run).
    """
    if assets is not None:
        return _latest_states_of(engine, site, at, list(dict.fromkeys(assets)))
    t = device_telemetry.c
    newest = (
        sa.select(t.asset_id, sa.func.max(t.measured_at).label("m"))
        .where(t.site_id == site, t.quantity.in_(STATE_QUANTITIES), t.measured_at <= _db_time(at))
        .group_by(t.asset_id)
        .subquery()
    )
    query = (
        sa.select(t.asset_id, t.value, t.unit, t.measured_at)
        .join(newest, sa.and_(t.asset_id == newest.c.asset_id, t.measured_at == newest.c.m))
        .where(t.site_id == site, t.quantity.in_(STATE_QUANTITIES))
    )
    out: dict[str, tuple[float, str, pd.Timestamp]] = {}
    for r in _rows(engine, query):
        out[r.asset_id] = (float(r.value), str(r.unit), pd.Timestamp(r.measured_at))
    return out


#: assets per query of :func:`_latest_states_of` (a compound SELECT of one term per asset)
_STATE_ASSETS_PER_QUERY = 200


def _latest_states_of(
    engine: Engine, site: str, at: TimeLike, assets: list[str]
) -> dict[str, tuple[float, str, pd.Timestamp]]:
    """:func:`latest_states` of `assets`: per asset and state quantity the newest time at or before
    `at` (one look-up of the key each), then the rows at those keys."""
    t, x = device_telemetry.c, device_telemetry.alias("x").c
    best: dict[str, tuple[pd.Timestamp, str, tuple[float, str, pd.Timestamp]]] = {}
    for lo in range(0, len(assets), _STATE_ASSETS_PER_QUERY):
        chunk = assets[lo : lo + _STATE_ASSETS_PER_QUERY]
        ids = sa.union_all(*[sa.select(sa.literal(a, sa.String).label("a")) for a in chunk]).subquery("ids")
        quantities = sa.union_all(*[sa.select(sa.literal(q, sa.String).label("q")) for q in STATE_QUANTITIES]).subquery(
            "quantities"
        )
        newest = (
            sa.select(sa.func.max(x.measured_at))
            .where(
                x.site_id == site, x.asset_id == ids.c.a, x.quantity == quantities.c.q, x.measured_at <= _db_time(at)
            )
            .scalar_subquery()
        )
        keys = (
            sa.select(ids.c.a, quantities.c.q, newest.label("m"))
            .select_from(ids.join(quantities, sa.true()))
            .subquery()
        )
        query = sa.select(t.asset_id, t.quantity, t.value, t.unit, t.measured_at).join(
            keys,
            sa.and_(t.site_id == site, t.asset_id == keys.c.a, t.quantity == keys.c.q, t.measured_at == keys.c.m),
        )
        for asset_id, quantity, value, unit, measured_at in _rows(engine, query):
            when = pd.Timestamp(measured_at)
            kept = best.get(asset_id)
            # the latest of the asset's quantities (the same instant: the later quantity name)
            if kept is None or (when, quantity) > kept[:2]:
                best[asset_id] = (when, quantity, (float(value), str(unit), when))
    return {asset_id: kept[2] for asset_id, kept in best.items()}


def device_power(
    engine: Engine, site: str, start: TimeLike, end: TimeLike, assets: list[str] | None = None
) -> pd.DataFrame:
    """Measured power (kW, > 0 drawn from the grid) per device (of `assets`, default all): the
    mean of the samples measured in each interval [t, t + resolution) of [start, end) at the
    site's resolution.

    Index: UTC interval starts; one column per asset that reported in the period; NaN where an
    asset reported nothing in an interval.
    """
    first, last = to_utc(start), to_utc(end)
    res = pd.Timedelta(minutes=get_site(engine, site).resolution_min)
    index = pd.date_range(first.floor(res), last, freq=res, inclusive="left", tz="UTC")
    t = device_telemetry.c
    query = sa.select(t.asset_id, t.measured_at, t.value).where(
        t.site_id == site, t.quantity == "power_kw", t.measured_at >= _db_time(first), t.measured_at < _db_time(last)
    )
    if assets is not None:
        query = query.where(t.asset_id.in_(assets))
    rows = _rows(engine, query)
    if not rows:
        return pd.DataFrame(index=index, dtype=float)
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["asset_id", "measured_at", "value"])
    frame["interval"] = pd.DatetimeIndex(pd.to_datetime(frame["measured_at"], utc=True)).floor(res)
    table = frame.pivot_table(index="interval", columns="asset_id", values="value", aggfunc="mean")
    table.columns.name = None
    return table.reindex(index).astype(float)


# --- EV sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSession:
    """An EV charging session as stored: the latest state after all its events."""

    session_id: str
    charger: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_needed_kwh: float
    target_soc: float | None = None
    capacity_kwh: float | None = None
    initial_soc: float | None = None
    v2g_consent: bool = False
    plugged_out_at: pd.Timestamp | None = None

    def to_domain(self) -> EVSession:
        """The session as the planner's :class:`grid.domain.EVSession` (a session plugged out
        before its departure leaves at the plug-out)."""
        leave = self.departure if self.plugged_out_at is None else min(self.departure, self.plugged_out_at)
        return EVSession(
            id=self.session_id,
            charger=self.charger,
            arrival=self.arrival.to_pydatetime(),
            departure=leave.to_pydatetime(),
            energy_needed_kwh=self.energy_needed_kwh,
            capacity_kwh=self.capacity_kwh,
            initial_soc=self.initial_soc,
            v2g_consent=self.v2g_consent,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("arrival", "departure", "plugged_out_at"):
            out[key] = None if out[key] is None else iso(out[key])
        return out


def _session(r: Any) -> StoredSession:
    return StoredSession(
        session_id=r.session_id,
        charger=r.charger,
        arrival=pd.Timestamp(r.arrival),
        departure=pd.Timestamp(r.departure),
        energy_needed_kwh=float(r.energy_needed_kwh),
        target_soc=r.target_soc,
        capacity_kwh=r.capacity_kwh,
        initial_soc=r.initial_soc,
        v2g_consent=bool(r.v2g_consent),
        plugged_out_at=None if r.plugged_out_at is None else pd.Timestamp(r.plugged_out_at),
    )


def get_session(engine: Engine | Connection, site: str, session_id: str) -> StoredSession | None:
    rows = _rows(
        engine, sa.select(ev_sessions).where(ev_sessions.c.site_id == site, ev_sessions.c.session_id == session_id)
    )
    return _session(rows[0]) if rows else None


def list_sessions(engine: Engine, site: str, include_done: bool = False) -> list[StoredSession]:
    """The site's sessions by arrival (without those plugged out unless `include_done`)."""
    s = ev_sessions.c
    query = sa.select(ev_sessions).where(s.site_id == site).order_by(s.arrival, s.session_id)
    if not include_done:
        query = query.where(s.plugged_out_at.is_(None))
    return [_session(r) for r in _rows(engine, query)]


def sessions_in(engine: Engine, site: str, start: TimeLike, end: TimeLike) -> list[StoredSession]:
    """Sessions plugged in at some time in [start, end): arrival before `end`, departure after
    `start`, and not plugged out by `start` (one plugged out later leaves then:
    :meth:`StoredSession.to_domain`). Ordered by arrival."""
    s = ev_sessions.c
    first, last = _db_time(start), _db_time(end)
    query = (
        sa.select(ev_sessions)
        .where(s.site_id == site, s.arrival < last, s.departure > first)
        .where(sa.or_(s.plugged_out_at.is_(None), s.plugged_out_at > first))
        .order_by(s.arrival, s.session_id)
    )
    return [_session(r) for r in _rows(engine, query)]


def event_key(source: str, site: str, session_id: str, kind: str, body: dict[str, Any]) -> str:
    """The identity of a session event: a message delivered again is the same event."""
    text = json.dumps([source, site, session_id, kind, body], sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def save_session(
    conn: Connection,
    site: str,
    session: StoredSession,
    kind: str,
    at: pd.Timestamp,
    received_at: pd.Timestamp,
    source: str,
    body: dict[str, Any],
    key: str | None = None,
) -> bool:
    """Write `session` (its new state) and the event that made it, in `conn`'s transaction.

    Returns False, writing nothing, when the event (`key`, default from source, body and the
    time received) is stored already.
    """
    key = key or event_key(source, site, session.session_id, kind, {"body": body, "received_at": iso(received_at)})
    seen = conn.execute(sa.select(ev_session_events.c.id).where(ev_session_events.c.event_key == key)).first()
    if seen is not None:
        return False
    values = {
        "charger": session.charger,
        "arrival": session.arrival.to_pydatetime(),
        "departure": session.departure.to_pydatetime(),
        "energy_needed_kwh": session.energy_needed_kwh,
        "target_soc": session.target_soc,
        "capacity_kwh": session.capacity_kwh,
        "initial_soc": session.initial_soc,
        "v2g_consent": session.v2g_consent,
        "updated_at": received_at.to_pydatetime(),
        "plugged_out_at": None if session.plugged_out_at is None else session.plugged_out_at.to_pydatetime(),
    }
    s = ev_sessions.c
    done = conn.execute(
        ev_sessions.update().where(s.site_id == site, s.session_id == session.session_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(
            ev_sessions.insert().values(
                site_id=site, session_id=session.session_id, created_at=received_at.to_pydatetime(), **values
            )
        )
    conn.execute(
        ev_session_events.insert().values(
            site_id=site,
            session_id=session.session_id,
            kind=kind,
            at=at.to_pydatetime(),
            received_at=received_at.to_pydatetime(),
            source=source,
            body=json.dumps(body, sort_keys=True, ensure_ascii=False, default=str),
            event_key=key,
        )
    )
    return True


def seed_sessions(conn: Connection, site: Site, now: pd.Timestamp | None = None) -> int:
    """Store the site YAML's sessions whose ids the store does not hold yet (the YAML only seeds
    the store; afterwards sessions come as events); returns how many were stored."""
    received = pd.Timestamp.now("UTC").floor("s") if now is None else now
    stored = 0
    known = set(conn.execute(sa.select(ev_sessions.c.session_id).where(ev_sessions.c.site_id == site.id)).scalars())
    for s in site.ev_sessions:
        if s.id in known:
            continue
        session = StoredSession(
            s.id,
            s.charger,
            pd.Timestamp(s.arrival).tz_convert("UTC"),
            pd.Timestamp(s.departure).tz_convert("UTC"),
            s.energy_needed_kwh,
            capacity_kwh=s.capacity_kwh,
            initial_soc=s.initial_soc,
        )
        body = json.loads(s.model_dump_json())
        stored += save_session(conn, site.id, session, "created", received, received, "yaml", body)
    return stored


def session_events(engine: Engine, site: str, session_id: str) -> list[dict[str, Any]]:
    """The events of one session in the order they were stored."""
    e = ev_session_events.c
    query = (
        sa.select(e.kind, e.at, e.received_at, e.source, e.body)
        .where(e.site_id == site, e.session_id == session_id)
        .order_by(e.id)
    )
    return [
        {
            "kind": r.kind,
            "at": iso(r.at),
            "received_at": iso(r.received_at),
            "source": r.source,
            "body": json.loads(r.body),
        }
        for r in _rows(engine, query)
    ]


# --- prices and weather ----------------------------------------------------------------------------


def _store_points(
    engine: Engine,
    table: sa.Table,
    keys: dict[str, Any],
    points: pd.DataFrame,
    value_column: str,
    published_at: pd.Timestamp,
    source: str,
    received_at: pd.Timestamp,
) -> int:
    """Replace the publication (`keys`, `published_at`) by `points` (start, end, value)."""
    c = table.c
    match = [c[k] == v for k, v in keys.items()] + [c.published_at == published_at.to_pydatetime()]
    rows = [
        {
            **keys,
            "start": pd.Timestamp(s).to_pydatetime(),
            "published_at": published_at.to_pydatetime(),
            "end": pd.Timestamp(e).to_pydatetime(),
            value_column: float(v),
            "source": source,
            "received_at": received_at.to_pydatetime(),
        }
        for s, e, v in zip(points["start"], points["end"], points["value"], strict=True)
    ]
    with write_transaction(engine) as conn:
        if rows:
            starts = [r["start"] for r in rows]
            conn.execute(table.delete().where(*match, c.start.in_(starts)))
            conn.execute(table.insert(), rows)
    return len(rows)


def store_prices(
    engine: Engine, area: str, points: pd.DataFrame, published_at: TimeLike, source: str, received_at: TimeLike
) -> int:
    """Store one publication of prices for `area` (a site id or a market such as DE-LU).

    `points` has columns ``start``, ``end`` (UTC) and ``value`` (EUR/kWh). Storing the same
    publication (area, published_at) again replaces its intervals. Returns the rows written.
    """
    return _store_points(
        engine,
        price_points,
        {"area": area},
        points,
        "price_eur_per_kwh",
        to_utc(published_at),
        source,
        to_utc(received_at),
    )


def store_weather(
    engine: Engine,
    area: str,
    quantity: str,
    points: pd.DataFrame,
    published_at: TimeLike,
    source: str,
    received_at: TimeLike,
) -> int:
    """Store one publication of a weather forecast (`quantity`, e.g. ``temp_degc``) for `area`."""
    keys = {"area": area, "quantity": quantity}
    return _store_points(
        engine, weather_points, keys, points, "value", to_utc(published_at), source, to_utc(received_at)
    )


def _resolution(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) > 1:
        return pd.Timedelta(index[1] - index[0])
    return pd.Timedelta(minutes=15)


def _published(
    engine: Engine,
    table: sa.Table,
    where: Sequence[Any],
    value_column: str,
    at: pd.Timestamp,
    grid: pd.DatetimeIndex,
) -> tuple[np.ndarray, np.ndarray]:
    """Per step of `grid`, the value of the latest publication at or before `at` covering it
    (NaN if none) and that publication's time (NaT)."""
    c = table.c
    res = _resolution(grid)
    query = (
        sa.select(c.start, c.end, c[value_column], c.published_at)
        .where(*where, c.published_at <= at.to_pydatetime())
        .where(c.start < (grid[-1] + res).to_pydatetime(), c.end > grid[0].to_pydatetime())
        .order_by(c.published_at, c.start)
    )
    values = np.full(len(grid), np.nan)
    published = np.full(len(grid), np.datetime64("NaT"), dtype="datetime64[ns]")
    stamps = grid.tz_convert("UTC").tz_localize(None).to_numpy()
    for start, end, value, pub in _rows(engine, query):
        lo = np.searchsorted(stamps, pd.Timestamp(start).tz_convert("UTC").tz_localize(None).to_datetime64())
        hi = np.searchsorted(stamps, pd.Timestamp(end).tz_convert("UTC").tz_localize(None).to_datetime64())
        values[lo:hi] = value
        published[lo:hi] = pd.Timestamp(pub).tz_convert("UTC").tz_localize(None).to_datetime64()
    return values, published


def _check_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) == 0:
        raise InputError("index", "must be a non-empty tz-aware DatetimeIndex")
    return index.tz_convert("UTC")


def prices_as_of(
    engine: Engine,
    site: str,
    at: TimeLike,
    index: pd.DatetimeIndex,
    forecast: str = SAME_HOUR_LAST_DAY,
    market: str | None = None,
) -> pd.DataFrame:
    """The price of each interval of `index` as known at `at`.

    Published prices of the site (or, where the site has none, of `market`) at or before `at`,
    the latest publication winning; an hourly price covers its four quarter-hours. Beyond them the
    named `forecast`: ``same_hour_last_day`` (the same wall-clock time in the site's time zone on
    the nearest earlier day, up to :data:`FORECAST_LOOKBACK_DAYS` back, that has a published
    price: day-ahead prices are per local delivery day, so across a DST change 03:00 follows
    03:00) or ``last_price`` (the last published price before the interval, held).

    Returns a frame on `index` with ``price_eur_per_kwh`` (NaN where nothing is known),
    ``source`` (``published``, the forecast's name, or ``missing``) and ``published_at`` (NaT
    for forecast and missing intervals).
    """
    if forecast not in PRICE_FORECASTS:
        raise InputError("forecast", f"must be one of {', '.join(PRICE_FORECASTS)}", forecast)
    index = _check_index(index)
    when = to_utc(at)
    res = _resolution(index)
    lookback = pd.Timedelta(days=FORECAST_LOOKBACK_DAYS)
    grid = pd.date_range(index[0] - lookback, index[-1], freq=res, tz="UTC")
    values, published = _published(engine, price_points, [price_points.c.area == site], "price_eur_per_kwh", when, grid)
    if market is not None:
        m_values, m_published = _published(
            engine, price_points, [price_points.c.area == market], "price_eur_per_kwh", when, grid
        )
        fill = np.isnan(values)
        values[fill], published[fill] = m_values[fill], m_published[fill]
    pos = grid.get_indexer(index)
    if (pos < 0).any():  # index off its own resolution grid: look each interval up on its own
        pos = np.searchsorted(grid.as_unit("ns").asi8, index.as_unit("ns").asi8, side="right") - 1
    price = values[pos].copy()
    pub = published[pos].copy()
    source = np.where(np.isnan(price), "missing", "published").astype(object)
    missing = np.flatnonzero(np.isnan(price))
    if forecast == SAME_HOUR_LAST_DAY and len(missing):
        tz = get_site(engine, site).timezone
        wall = index[missing].tz_convert(tz).tz_localize(None)
        for k in range(1, FORECAST_LOOKBACK_DAYS + 1):
            back = (wall - pd.Timedelta(days=k)).tz_localize(tz, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
            at_grid = grid.get_indexer(back)
            for j, q in zip(missing, at_grid, strict=True):
                if source[j] == "missing" and q >= 0 and not np.isnan(values[q]):
                    price[j], source[j] = values[q], forecast
    if forecast == LAST_PRICE:
        for j in missing:
            earlier = np.flatnonzero(~np.isnan(values[: pos[j] + 1]))
            if len(earlier):
                price[j], source[j] = values[earlier[-1]], forecast
    return pd.DataFrame(
        {"price_eur_per_kwh": price, "source": source, "published_at": pd.DatetimeIndex(pub).tz_localize("UTC")},
        index=index,
    )


def weather_as_of(
    engine: Engine, site: str, at: TimeLike, index: pd.DatetimeIndex, quantity: str = "temp_degc"
) -> pd.DataFrame:
    """A published weather quantity per interval of `index` as known at `at` (the latest
    publication wins): ``value`` (NaN where none), ``published_at``."""
    index = _check_index(index)
    where = [weather_points.c.area == site, weather_points.c.quantity == quantity]
    res = _resolution(index)
    grid = pd.date_range(index[0], index[-1], freq=res, tz="UTC")
    values, published = _published(engine, weather_points, where, "value", to_utc(at), grid)
    pos = grid.get_indexer(index)
    if (pos < 0).any():
        pos = np.searchsorted(grid.as_unit("ns").asi8, index.as_unit("ns").asi8, side="right") - 1
    return pd.DataFrame(
        {"value": values[pos], "published_at": pd.DatetimeIndex(published[pos]).tz_localize("UTC")}, index=index
    )


# --- limit orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitOrder:
    """A grid operator's order: at `connection`, over [start, end), import at most `import_kw`
    and/or export at most `export_kw` (None: that direction is not limited)."""

    id: str
    site: str
    connection: str
    start: pd.Timestamp
    end: pd.Timestamp
    import_kw: float | None
    export_kw: float | None
    reason: str
    created_at: pd.Timestamp
    cancelled_at: pd.Timestamp | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("start", "end", "created_at", "cancelled_at"):
            out[key] = None if out[key] is None else iso(out[key])
        return out


def _order(r: Any) -> LimitOrder:
    return LimitOrder(
        id=r.id,
        site=r.site_id,
        connection=r.connection,
        start=pd.Timestamp(r.start),
        end=pd.Timestamp(r.end),
        import_kw=r.import_kw,
        export_kw=r.export_kw,
        reason=r.reason,
        created_at=pd.Timestamp(r.created_at),
        cancelled_at=None if r.cancelled_at is None else pd.Timestamp(r.cancelled_at),
    )


def add_order(
    engine: Engine,
    site: str,
    connection: str,
    start: TimeLike,
    end: TimeLike,
    import_kw: float | None,
    export_kw: float | None,
    reason: str,
    created_at: TimeLike,
) -> LimitOrder:
    """Store a (validated) limit order; returns it with its new id."""
    order = LimitOrder(
        uuid.uuid4().hex, site, connection, to_utc(start), to_utc(end), import_kw, export_kw, reason, to_utc(created_at)
    )
    with write_transaction(engine) as conn:
        conn.execute(
            limit_orders.insert().values(
                id=order.id,
                site_id=site,
                connection=connection,
                start=order.start.to_pydatetime(),
                end=order.end.to_pydatetime(),
                import_kw=import_kw,
                export_kw=export_kw,
                reason=reason,
                created_at=order.created_at.to_pydatetime(),
            )
        )
    return order


def get_order(engine: Engine, site: str, order_id: str) -> LimitOrder | None:
    rows = _rows(engine, sa.select(limit_orders).where(limit_orders.c.site_id == site, limit_orders.c.id == order_id))
    return _order(rows[0]) if rows else None


def cancel_order(engine: Engine, site: str, order_id: str, at: TimeLike) -> LimitOrder | None:
    """Mark an order cancelled at `at` (a cancelled one keeps its first cancellation time);
    None when the site has no such order."""
    c = limit_orders.c
    with write_transaction(engine) as conn:
        conn.execute(
            limit_orders.update()
            .where(c.site_id == site, c.id == order_id, c.cancelled_at.is_(None))
            .values(cancelled_at=_db_time(at))
        )
    return get_order(engine, site, order_id)


def list_orders(engine: Engine, site: str, include_cancelled: bool = True) -> list[LimitOrder]:
    c = limit_orders.c
    query = sa.select(limit_orders).where(c.site_id == site).order_by(c.start, c.created_at, c.id)
    if not include_cancelled:
        query = query.where(c.cancelled_at.is_(None))
    return [_order(r) for r in _rows(engine, query)]


def active_orders(engine: Engine, site: str, start: TimeLike, end: TimeLike) -> list[LimitOrder]:
    """Orders not cancelled that overlap [start, end), by start."""
    c = limit_orders.c
    query = (
        sa.select(limit_orders)
        .where(c.site_id == site, c.cancelled_at.is_(None), c.start < _db_time(end), c.end > _db_time(start))
        .order_by(c.start, c.created_at, c.id)
    )
    return [_order(r) for r in _rows(engine, query)]
