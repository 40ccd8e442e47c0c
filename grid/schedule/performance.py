"""Realised against planned: after each interval, what the plan in force said against what was
measured, stored per connection and controllable asset (table ``performance``), and the realised
KPIs over a period.

The plan *in force* for an interval [t, t + resolution) is the latest good plan (status
``optimal`` or ``optimal_with_violations``) computed at or before t whose horizon covers t: the
set-points a device was following when the interval started. Signs as in the plan: kW > 0 is drawn
from the grid node.

Per interval and entity (:func:`evaluate_intervals`):

* connection: planned import (the plan's ``import_kw``), measured import (the connection's import
  meter, kind ``transformer``, as mean kW), the import limit (the plan's ``limit_import_kw``, or a
  lower grid-operator order in force), the price of energy (the latest published price of the
  interval in the store);
* asset (battery, heat pump, EV charger, PV): the set-point (the plan's ``power_kw``), the measured
  power (mean of the device telemetry ``power_kw`` in the interval), the §14a dimming the plan
  applied (``dimmed_kw``).

A value that was not measured is stored as NULL and reported as missing, never as 0.
:func:`performance_kpis` reads the stored rows back (plus the EV sessions of the store).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.schedule import metrics
from grid.schedule.setpoints import NOT_SETPOINTS
from grid.store import bulk
from grid.store import plans as plan_store
from grid.store.bulk import lock_site
from grid.store.engine import driver_rows, write_transaction
from grid.store.live import Asset, active_orders, device_power, prices_as_of, sessions_in, site_assets
from grid.store.plans import kept_plan_body
from grid.store.readback import sensor_power
from grid.store.schema import Measure, SensorKind, performance, performance_writes, plans, stored_time, utc_index
from grid.store.sites import get_site, sensor_frame
from grid.timeindex import iso, merged_within, to_utc

TimeLike = pd.Timestamp | dt.datetime | str

#: a device followed its set-point in an interval when |measured - set-point| is at most
#: max(TOLERANCE_MIN_KW, TOLERANCE_SHARE x its rating)
TOLERANCE_MIN_KW = 0.1
TOLERANCE_SHARE = 0.05
#: measured import above the limit by more than this counts as above the limit (float noise)
ABOVE_LIMIT_EPS_KW = 1e-6
#: a dimming smaller than this is none (the plan rounds to 1e-6)
DIMMED_EPS_KW = 1e-6
#: the scheduled evaluation re-evaluates this many finished intervals each time, so that readings
#: and telemetry arriving up to an hour late are taken in
LATE_INTERVALS = 4
#: after a long stop the scheduled evaluation catches up at most this far back
MAX_CATCHUP = pd.Timedelta(days=7)
#: the gauges cover the last 24 h of finished intervals
GAUGE_WINDOW = pd.Timedelta(hours=24)
#: prices "as known" here: the latest publication of each interval
FINAL_PRICES_AT = pd.Timestamp("2200-01-01T00:00:00Z")
CONNECTION = "connection"


@dataclass(frozen=True)
class _PlanRef:
    seq: int
    plan_id: str
    computed_at: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp


def _index(engine: Engine, site: str, start: TimeLike, end: TimeLike) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    res = pd.Timedelta(minutes=get_site(engine, site).resolution_min)
    first, last = to_utc(start), to_utc(end)
    return pd.date_range(first.floor(res), last, freq=res, inclusive="left", tz="UTC"), res


def _plans_in_force(engine: Engine, site: str, index: pd.DatetimeIndex, res: pd.Timedelta) -> list[_PlanRef | None]:
    """Per interval of `index`, the latest good plan computed at or before its start that covers it."""
    first, last = index[0].to_pydatetime(), (index[-1] + res).to_pydatetime()
    c = plans.c
    query = (
        sa.select(c.seq, c.plan_id, c.computed_at, c.start, c.end)
        .where(c.site_id == site, c.status.in_(plan_store.GOOD))
        .where(c.computed_at < last, c.start < last, c.end > first)
        .order_by(c.computed_at, c.seq)
    )
    with engine.connect() as conn:
        rows = [
            _PlanRef(r.seq, r.plan_id, pd.Timestamp(r.computed_at), pd.Timestamp(r.start), pd.Timestamp(r.end))
            for r in conn.execute(query)
        ]
    out: list[_PlanRef | None] = []
    for t in index:
        found = None
        for ref in reversed(rows):  # newest first: usually the first one computed by t covers t
            if ref.computed_at <= t and ref.start <= t < ref.end:
                found = ref
                break
        out.append(found)
    return out


def _at(values: Any, step: int) -> float | None:
    """Element `step` of a stored per-interval list (None: absent, null or not finite)."""
    if not isinstance(values, list) or not 0 <= step < len(values):
        return None
    value = values[step]
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _import_sensor(sensors: pd.DataFrame, connection: str) -> str | None:
    """The name of the connection's import meter (kind transformer, direction +1), if any."""
    hit = sensors[
        (sensors["kind"] == SensorKind.TRANSFORMER.value)
        & (sensors["connection"] == connection)
        & (sensors["direction"] == 1)
        & sensors["measure"].isin([Measure.REGISTER.value, Measure.ENERGY.value, Measure.POWER.value])
    ]
    if hit.empty:
        return None
    names = sorted(hit["name"])
    preferred = f"{connection}.import"
    return preferred if preferred in names else str(names[0])


def _measured_import(
    engine: Engine, site: str, connections: list[str], index: pd.DatetimeIndex, res: pd.Timedelta
) -> dict[str, pd.Series]:
    sensors = sensor_frame(engine, site)
    names = {cid: _import_sensor(sensors, cid) if len(sensors) else None for cid in connections}
    ids = {cid: int(sensors.index[sensors["name"] == name][0]) for cid, name in names.items() if name is not None}
    # the connections' import meters read at once (a read of the sensors and the site per meter before)
    chosen = sensors.loc[list(dict.fromkeys(ids.values()))]
    power = sensor_power(engine, site, chosen, index[0], index[-1] + res) if ids else None
    out: dict[str, pd.Series] = {}
    for cid in connections:
        if power is None or cid not in ids:
            out[cid] = pd.Series(np.nan, index=index)
        else:
            out[cid] = power[ids[cid]].rename("power_kw")
    return out


def _per_interval(series: pd.Series, index: pd.DatetimeIndex) -> list[float | None]:
    """The value of `series` at each interval of `index` (None: absent, null or not finite)."""
    values = series.reindex(index).to_numpy(dtype=float).tolist()
    return [v if math.isfinite(v) else None for v in values]


def evaluate_intervals(engine: Engine, site: str, start: TimeLike, end: TimeLike, now: TimeLike | None = None) -> int:
    """Evaluate the intervals of [start, end) (`start` floored to the site's resolution) against
    the plan in force for each, and store the rows (replacing earlier ones of those intervals:
    evaluating again is harmless and picks up late measurements). Returns how many intervals.

    `now` is the time written as ``evaluated_at`` (default: the wall clock).
    """
    index, res = _index(engine, site, start, end)
    if not len(index):
        return 0
    evaluated_at = (pd.Timestamp.now("UTC") if now is None else to_utc(now)).to_pydatetime()
    first, last = index[0], index[-1] + res
    registered = site_assets(engine, site)
    in_force = _plans_in_force(engine, site, index, res)
    bodies: dict[str, dict[str, Any]] = {}
    for ref in in_force:
        if ref is not None and ref.plan_id not in bodies:
            bodies[ref.plan_id] = kept_plan_body(engine, ref.plan_id)
    connections = sorted(
        {a.asset_id for a in registered.values() if a.kind == SensorKind.TRANSFORMER.value}
        | {cid for body in bodies.values() for cid in body.get("connections", {})}
    )
    kinds: dict[str | None, dict[str, str]] = {}  # the assets of each plan in force (or of none)
    for ref in in_force:
        pid = ref.plan_id if ref is not None else None
        if pid not in kinds:
            kinds[pid] = _asset_kinds(registered, bodies[pid] if pid is not None else {})
    imports = _measured_import(engine, site, connections, index, res)
    # the power of these assets only: the store finds them by its key (asset, quantity, time)
    # instead of going through all of the site's telemetry
    power = device_power(engine, site, first, last, sorted({aid for assets in kinds.values() for aid in assets}))
    orders = [(float(o.import_kw), o) for o in active_orders(engine, site, first, last) if o.import_kw is not None]
    price_frame = prices_as_of(engine, site, FINAL_PRICES_AT, index)
    prices = _per_interval(price_frame["price_eur_per_kwh"].where(price_frame["source"] == "published"), index)
    # per interval of `index`, each series' value taken once (a pandas lookup per row cost more)
    measured = {cid: _per_interval(imports[cid], index) for cid in connections}
    devices = {str(aid): _per_interval(power[aid], index) for aid in power.columns}
    nothing: list[float | None] = [None] * len(index)
    rows: list[dict[str, Any]] = []
    for i, (t, ref) in enumerate(zip(index, in_force, strict=True)):
        body = bodies[ref.plan_id] if ref is not None else {}
        step = int((t - ref.start) // res) if ref is not None else -1
        plan_id = ref.plan_id if ref is not None else None
        ts, price = t.to_pydatetime(), prices[i]
        for cid in connections:
            planned = body.get("connections", {}).get(cid, {})
            limit = _at(planned.get("limit_import_kw"), step)
            for cap, o in orders:
                if o.connection == cid and o.start < t + res and o.end > t:
                    limit = cap if limit is None else min(limit, cap)
            rows.append(
                _row(site, ts, cid, CONNECTION, plan_id, evaluated_at)
                | {
                    "planned_kw": _at(planned.get("import_kw"), step),
                    "measured_kw": measured[cid][i],
                    "limit_kw": limit,
                    "price_eur_per_kwh": price,
                }
            )
        for aid, kind in kinds[plan_id].items():
            data = body.get("assets", {}).get(aid, {})
            setpoint = _at(data.get("power_kw"), step)
            rows.append(
                _row(site, ts, aid, kind, plan_id, evaluated_at)
                | {
                    "planned_kw": setpoint,
                    "setpoint_kw": setpoint,
                    "measured_kw": devices.get(aid, nothing)[i],
                    "dimmed_kw": _at(data.get("dimmed_kw"), step),
                    "price_eur_per_kwh": price,
                }
            )
    p = performance.c
    with write_transaction(engine) as conn:
        # the site's evaluations one at a time, so that the ids of their spans are in commit order
        lock_site(conn, site, "grid.performance")
        conn.execute(
            performance.delete().where(p.site_id == site, p.ts >= first.to_pydatetime(), p.ts < last.to_pydatetime())
        )
        if rows:
            bulk.insert_rows(conn, performance, rows)
        conn.execute(
            performance_writes.insert().values(
                site_id=site,
                start=first.to_pydatetime(),
                end=last.to_pydatetime(),
                written_at=pd.Timestamp.now("UTC").to_pydatetime(),
            )
        )
    return len(index)


def _row(site: str, ts: dt.datetime, entity: str, kind: str, plan_id: str | None, at: dt.datetime) -> dict[str, Any]:
    return {
        "site_id": site,
        "ts": ts,
        "entity": entity,
        "kind": kind,
        "plan_id": plan_id,
        "planned_kw": None,
        "measured_kw": None,
        "limit_kw": None,
        "setpoint_kw": None,
        "dimmed_kw": None,
        "price_eur_per_kwh": None,
        "evaluated_at": at,
    }


def _asset_kinds(registered: dict[str, Asset], body: dict[str, Any]) -> dict[str, str]:
    """The controllable assets (id -> type): those registered and those the plan gives set-points."""
    kinds = {a.asset_id: a.kind for a in registered.values() if a.kind != SensorKind.TRANSFORMER.value}
    for aid, data in body.get("assets", {}).items():
        if data.get("type") not in NOT_SETPOINTS and isinstance(data.get("power_kw"), list):
            kinds.setdefault(aid, str(data.get("type", "")))
    return dict(sorted(kinds.items()))


def evaluate_finished(engine: Engine, site: str, now: TimeLike) -> int:
    """The scheduled evaluation: every interval that ended by `now` and is not stored yet (after
    a restart, back to the last one stored, at most :data:`MAX_CATCHUP`; the first time, from the
    first good plan's start), plus the last :data:`LATE_INTERVALS` again. Returns how many."""
    when = to_utc(now)
    res = pd.Timedelta(minutes=get_site(engine, site).resolution_min)
    end = when.floor(res)
    p, c = performance.c, plans.c
    with engine.connect() as conn:
        last_done = conn.execute(sa.select(sa.func.max(p.ts)).where(p.site_id == site)).scalar()
        first_plan = conn.execute(
            sa.select(sa.func.min(c.start)).where(c.site_id == site, c.status.in_(plan_store.GOOD))
        ).scalar()
    if last_done is not None:
        start = pd.Timestamp(last_done) + res - LATE_INTERVALS * res
    elif first_plan is not None:
        start = pd.Timestamp(first_plan)
    else:
        return 0
    start = max(start, end - MAX_CATCHUP)
    if start >= end:
        return 0
    return evaluate_intervals(engine, site, start, end, now=when)


# --- realised KPIs ----------------------------------------------------------------------------------


_COLUMNS = [
    "ts", "entity", "kind", "plan_id", "planned_kw", "measured_kw", "limit_kw", "setpoint_kw", "dimmed_kw",
    "price_eur_per_kwh",
]  # fmt: skip


def _stored(engine: Engine, site: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """The stored rows of [first, last) in (ts, entity) order (:data:`_COLUMNS`)."""
    if last - first > _KeptRows.MAX_SPAN:
        with engine.connect() as conn:
            return _stored_query(conn, site, first, last)
    return _KEPT.rows(engine, site, first, last)


def _stored_query(conn: sa.Connection, site: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    p = performance.c
    # the times as the driver gives them, converted at once (a datetime per row cost more than the
    # query for the gauges' 24 h, ~28 k rows on the demo site)
    query = (
        sa.select(stored_time(p.ts), *[p[name] for name in _COLUMNS[1:]])
        .where(p.site_id == site, p.ts >= first.to_pydatetime(), p.ts < last.to_pydatetime())
        .order_by(p.ts, p.entity)
    )
    rows = driver_rows(conn, query)  # stored_time, numbers and texts: nothing to process per row
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["ts"] = utc_index(frame["ts"].to_numpy())
    for col in _COLUMNS[4:]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


@dataclass(frozen=True)
class _Rows:
    """The stored rows of [lo, hi) as of the evaluation `seen` (the newest span written for the
    site when they were read; 0: none), whose row is `mark`."""

    lo: pd.Timestamp
    hi: pd.Timestamp
    seen: int
    mark: tuple[Any, ...] | None
    data: pd.DataFrame


class _KeptRows:
    """Per engine and site, the stored rows of the windows read last (the gauges' 24 h, the hour a
    run looks back on), read again only where an evaluation rewrote them since: every write of
    ``performance`` is :func:`evaluate_intervals`, which records its span in
    ``performance_writes`` in the same transaction under the site's lock (so a site's span ids
    are in commit order; spans are read before rows, so a write committing in between is read
    again next time, never missed). The scheduled evaluation rewrites the last hour or so; the
    gauges' window then reads ~300 rows instead of ~28 k on the demo site."""

    #: windows up to this long are kept (and the union of those read, up to this long)
    MAX_SPAN = pd.Timedelta(days=2)
    KEPT = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, OrderedDict[str, _Rows]] = weakref.WeakKeyDictionary()

    def rows(self, engine: Engine, site: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
        with self._lock:
            entry = self._by_engine.setdefault(engine, OrderedDict()).get(site)
        w = performance_writes.c
        with engine.connect() as conn:
            if entry is not None and self._mark(conn, entry.seen) != entry.mark:
                entry = None  # not the store it was read from
            if entry is not None and (
                last <= entry.lo or first >= entry.hi or max(last, entry.hi) - min(first, entry.lo) > self.MAX_SPAN
            ):
                entry = None
            if entry is None:
                newest = int(conn.execute(sa.select(sa.func.max(w.id)).where(w.site_id == site)).scalar() or 0)
                mark = self._mark(conn, newest)
                lo, hi = first, last
                data = _stored_query(conn, site, first, last)
            else:
                written = conn.execute(
                    sa.select(w.id, w.start, w.end).where(w.site_id == site, w.id > entry.seen).order_by(w.id)
                ).all()
                newest = int(written[-1][0]) if written else entry.seen
                mark = self._mark(conn, newest) if written else entry.mark
                lo, hi = min(first, entry.lo), max(last, entry.hi)
                stale = [(pd.Timestamp(a), pd.Timestamp(z)) for _, a, z in written]
                stale += [(lo, entry.lo), (entry.hi, hi)]
                ranges = merged_within(stale, lo, hi)
                # the kept rows between the ranges and each range read again, in time order: slices
                # (a boolean mask or a sort would copy every column, the strings through Arrow)
                old = entry.data
                at = pd.Index(old["ts"])
                parts, done = [], 0
                for a, z in ranges:
                    parts.append(old.iloc[done : at.searchsorted(a)])
                    parts.append(_stored_query(conn, site, a, z))
                    done = at.searchsorted(z)
                parts.append(old.iloc[done:])
                parts = [p for p in parts if len(p)]
                data = pd.concat(parts, ignore_index=True) if parts else old.iloc[:0]
        with self._lock:
            kept = self._by_engine.setdefault(engine, OrderedDict())
            kept[site] = _Rows(lo, hi, newest, mark, data)
            kept.move_to_end(site)
            while len(kept) > self.KEPT:
                kept.popitem(last=False)
        at = pd.Index(data["ts"])
        inside = data.iloc[at.searchsorted(first) : at.searchsorted(last)].reset_index(drop=True)
        if inside.empty:
            with engine.connect() as conn:
                return _stored_query(conn, site, first, first)  # the empty frame, typed as always
        return inside

    def clear(self) -> None:
        with self._lock:
            self._by_engine.clear()

    @staticmethod
    def _mark(conn: sa.Connection, write_id: int) -> tuple[Any, ...] | None:
        if not write_id:
            return None
        w = performance_writes.c
        row = conn.execute(sa.select(w.id, w.site_id, w.start, w.end, w.written_at).where(w.id == write_id)).first()
        return tuple(row) if row is not None else ("gone", write_id)


_KEPT = _KeptRows()


def _kwh(power_kw: pd.Series, dt_h: float) -> float | None:
    """Energy of the intervals that have a value, kWh; None when none has one."""
    return _num(float(power_kw.sum() * dt_h)) if power_kw.notna().any() else None


def _num(x: float | None) -> float | None:
    """A figure as JSON: None when undefined (nothing measured), rounded to 1e-6."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _connection_kpis(rows: pd.DataFrame, n: int, dt_h: float) -> dict[str, Any]:
    measured = rows["measured_kw"].notna()
    limited = measured & rows["limit_kw"].notna()
    over = (rows["measured_kw"] - rows["limit_kw"]).where(limited, 0.0)
    above = over > ABOVE_LIMIT_EPS_KW
    energy = rows["measured_kw"].where(measured) * dt_h
    priced = measured & rows["price_eur_per_kwh"].notna()
    m = int(measured.sum())
    return {
        "intervals": n,
        "planned_intervals": int(rows["plan_id"].notna().sum()),
        "measured_intervals": m,
        "missing_intervals": n - m,
        "intervals_above_limit": int(above.sum()),
        "kwh_above_limit": _num(float(over[above].sum() * dt_h)) if m else None,
        "import_kwh": _num(float(energy.sum())) if m else None,
        "planned_import_kwh": _kwh(rows["planned_kw"], dt_h),
        "peak_import_kw": _num(float(rows["measured_kw"].max())) if m else None,
        "cost_eur": _num(float((energy * rows["price_eur_per_kwh"])[priced].sum())) if priced.any() else None,
        "priced_intervals": int(priced.sum()),
        "unpriced_intervals": int((measured & ~priced).sum()),
    }


def _tolerance_kw(rating_kw: float | None) -> float:
    return max(TOLERANCE_MIN_KW, TOLERANCE_SHARE * (rating_kw or 0.0))


def _assets_kpis(
    rows: pd.DataFrame, n: int, ratings_kw: dict[str, float | None], dt_h: float
) -> dict[str, dict[str, Any]]:
    """Per asset (entity, sorted) of `rows` (the stored asset rows in time order): following of its
    set-point within its tolerance (by its rating in `ratings_kw`, kW), measured and set-point
    energy (kWh), dimming. Numpy over each asset's slice of the rows sorted once (a pandas pass
    per asset cost ~3 ms an asset, ~1 s a call on the demo site); the sums are numpy's, as
    pandas' were, so the figures are the same to the last digit."""
    if rows.empty:
        return {}
    entity = rows["entity"].astype(str).to_numpy()
    order = np.argsort(entity, kind="stable")  # per asset, the rows stay in time order
    entity = entity[order]
    kind = rows["kind"].astype(str).to_numpy()[order]
    setpoint = rows["setpoint_kw"].to_numpy(dtype=float)[order]
    measured = rows["measured_kw"].to_numpy(dtype=float)[order]
    dimmed = np.nan_to_num(rows["dimmed_kw"].to_numpy(dtype=float)[order], nan=0.0)
    has_setpoint, has_measured = ~np.isnan(setpoint), ~np.isnan(measured)
    setpoint0, measured0 = np.where(has_setpoint, setpoint, 0.0), np.where(has_measured, measured, 0.0)
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    ends = np.r_[starts[1:], len(entity)]
    out: dict[str, dict[str, Any]] = {}
    for i, j in zip(starts, ends, strict=True):
        aid = str(entity[i])
        rating = ratings_kw.get(aid)
        tol = _tolerance_kw(rating)
        sp, me, both = has_setpoint[i:j], has_measured[i:j], has_setpoint[i:j] & has_measured[i:j]
        deviation = np.abs(measured[i:j][both] - setpoint[i:j][both])
        k, with_setpoint = int(both.sum()), int(sp.sum())
        followed = int((deviation <= tol + 1e-9).sum())
        dim = dimmed[i:j]
        is_dimmed = dim > DIMMED_EPS_KW
        out[aid] = {
            "type": str(kind[i]),
            "rating_kw": rating,
            "tolerance_kw": _num(tol),
            "intervals": n,
            "setpoint_intervals": with_setpoint,
            "measured_intervals": k,
            "missing_intervals": with_setpoint - k,
            "mean_abs_deviation_kw": _num(float(deviation.sum() / k)) if k else None,
            "followed_intervals": followed,
            "followed_share": _num(followed / k) if k else None,
            "measured_kwh": _num(float(measured0[i:j].sum() * dt_h)) if me.any() else None,
            "setpoint_kwh": _num(float(setpoint0[i:j].sum() * dt_h)) if with_setpoint else None,
            "dimmed_intervals": int(is_dimmed.sum()),
            "dimmed_kwh": _num(float(dim[is_dimmed].sum() * dt_h)),
        }
    return dict(sorted(out.items()))


def _ev_sessions(
    engine: Engine, site: str, frame: pd.DataFrame, index: pd.DatetimeIndex, res: pd.Timedelta
) -> dict[str, Any]:
    """Per EV session plugged in during the period: energy the charger delivered (telemetry, over
    the session's intervals within the period) against the energy requested."""
    dt_h = res / pd.Timedelta(hours=1)
    out: dict[str, Any] = {}
    first, last = index[0], index[-1] + res
    sessions = sessions_in(engine, site, first, last)
    chargers = {s.charger for s in sessions}
    # each charger's rows taken once, with the position of each row's interval in `index` (-1:
    # none): a session's intervals are a run of positions (a day of the demo site is ~28k rows
    # and ~40 sessions); numpy throughout (a pandas pass per charger and session cost ~50 ms a call)
    theirs = frame[frame["entity"].isin(chargers)]
    entity = theirs["entity"].astype(str).to_numpy()
    order = np.argsort(entity, kind="stable")  # per charger, the rows stay in time order
    entity = entity[order]
    pos_all = index.get_indexer(pd.DatetimeIndex(theirs["ts"]))[order]
    measured_all = theirs["measured_kw"].to_numpy(dtype=float)[order]
    setpoint_all = theirs["setpoint_kw"].to_numpy(dtype=float)[order]
    cuts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    own = (
        {
            str(entity[i]): (pos_all[i:j], measured_all[i:j], setpoint_all[i:j])
            for i, j in zip(cuts, np.r_[cuts[1:], len(entity)], strict=True)
        }
        if len(entity)
        else {}
    )
    none = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    starts_ns = index.as_unit("ns").asi8
    ends_ns = (index + res).as_unit("ns").asi8
    for s in sessions:
        leave = s.departure if s.plugged_out_at is None else min(s.departure, s.plugged_out_at)
        # the session's intervals: those that start before it leaves and end after it arrives (a run)
        inside = np.flatnonzero(
            (starts_ns < pd.Timestamp(leave).as_unit("ns").value)
            & (ends_ns > pd.Timestamp(s.arrival).as_unit("ns").value)
        )
        n_mine = len(inside)
        pos, measured_kw, setpoint_kw = own.get(s.charger, none)
        take = (pos >= inside[0]) & (pos <= inside[-1]) if n_mine else np.zeros(len(pos), dtype=bool)
        measured = measured_kw[take]
        measured = measured[~np.isnan(measured)]
        setpoint = setpoint_kw[take]
        has_setpoint = ~np.isnan(setpoint)
        out[s.session_id] = {
            "charger": s.charger,
            "arrival": iso(s.arrival),
            "departure": iso(leave),
            "requested_kwh": _num(s.energy_needed_kwh),
            # the sums pandas took before: of the measured values, of the set-points with NaN as 0
            "delivered_kwh": _num(float(measured.sum() * dt_h)) if len(measured) else None,
            "planned_kwh": _num(float(np.where(has_setpoint, setpoint, 0.0).sum() * dt_h))
            if has_setpoint.any()
            else None,
            "intervals": n_mine,
            "measured_intervals": len(measured),
            "missing_intervals": n_mine - len(measured),
            "within_period": bool(s.arrival >= first and leave <= last),
        }
    return out


def performance_kpis(
    engine: Engine, site: str, start: TimeLike, end: TimeLike, ev_sessions: bool = True
) -> dict[str, Any]:
    """Realised KPIs over the intervals of [start, end) from the stored evaluation (see the module
    docstring; kW, kWh, EUR, shares 0..1). A figure over no measured interval is None, and every
    entity says how many of its intervals were measured and how many are missing. Intervals not
    evaluated yet count as missing (``not_evaluated_intervals``). Without `ev_sessions` the
    per-session figures are left out (``ev_sessions`` empty), for a caller that does not use them."""
    index, res = _index(engine, site, start, end)
    dt_h = res / pd.Timedelta(hours=1)
    n = len(index)
    first = index[0] if n else to_utc(start)
    last = index[-1] + res if n else first
    frame = _stored(engine, site, first, last)
    registered = site_assets(engine, site)
    connections: dict[str, Any] = {}
    assets: dict[str, Any] = {}
    is_connection = frame["kind"] == CONNECTION
    for entity, rows in frame[is_connection].groupby("entity", sort=True):
        connections[str(entity)] = _connection_kpis(rows, n, dt_h)
    ratings = {aid: a.max_power_kw for aid, a in registered.items()}
    assets.update(_assets_kpis(frame[~is_connection], n, ratings, dt_h))
    dimmed = frame["dimmed_kw"].fillna(0.0)
    in_force = dimmed > DIMMED_EPS_KW
    evaluated = frame["ts"].nunique()
    totals_import = [c["import_kwh"] for c in connections.values() if c["import_kwh"] is not None]
    totals_cost = [c["cost_eur"] for c in connections.values() if c["cost_eur"] is not None]
    above_kwh = [c["kwh_above_limit"] for c in connections.values() if c["kwh_above_limit"] is not None]
    return {
        "site": site,
        "start": iso(first),
        "end": iso(last),
        "resolution_min": int(res / pd.Timedelta(minutes=1)),
        "intervals": n,
        "evaluated_intervals": int(evaluated),
        "not_evaluated_intervals": n - int(evaluated),
        "planned_intervals": int(frame.loc[frame["plan_id"].notna(), "ts"].nunique()),
        "tolerance": {"min_kw": TOLERANCE_MIN_KW, "share_of_rating": TOLERANCE_SHARE},
        "connections": connections,
        "assets": assets,
        "ev_sessions": _ev_sessions(engine, site, frame, index, res) if n and ev_sessions else {},
        "dimming": {
            "intervals": int(in_force.sum()),
            "dimmed_kwh": _num(float(dimmed[in_force].sum() * dt_h)),
            "devices": {str(k): int(v) for k, v in frame.loc[in_force, "entity"].value_counts().sort_index().items()},
        },
        "totals": {
            "intervals_above_limit": sum(c["intervals_above_limit"] for c in connections.values()),
            "kwh_above_limit": _num(sum(above_kwh)) if above_kwh else None,
            "import_kwh": _num(sum(totals_import)) if totals_import else None,
            "cost_eur": _num(sum(totals_cost)) if totals_cost else None,
        },
    }


def publish_gauges(kpis: dict[str, Any]) -> None:
    """Set the ``quartiere_performance_*`` gauges from :func:`performance_kpis` (a figure that is
    None, nothing measured, is set to NaN: absent, not 0)."""
    site = kpis["site"]

    def put(gauge: Any, entity: str, value: float | None) -> None:
        gauge.labels(site, entity).set(float("nan") if value is None else value)

    for cid, c in kpis["connections"].items():
        put(metrics.PERF_ABOVE_LIMIT_INTERVALS, cid, c["intervals_above_limit"])
        put(metrics.PERF_ABOVE_LIMIT_KWH, cid, c["kwh_above_limit"])
        put(metrics.PERF_IMPORT_KWH, cid, c["import_kwh"])
        put(metrics.PERF_COST_EUR, cid, c["cost_eur"])
        put(metrics.PERF_MISSING_INTERVALS, cid, c["missing_intervals"])
    for aid, a in kpis["assets"].items():
        put(metrics.PERF_DEVIATION_KW, aid, a["mean_abs_deviation_kw"])
        put(metrics.PERF_FOLLOWED_SHARE, aid, a["followed_share"])
        put(metrics.PERF_MISSING_INTERVALS, aid, a["missing_intervals"])
        put(metrics.PERF_DIMMED_INTERVALS, aid, a["dimmed_intervals"])
    for sid, s in kpis["ev_sessions"].items():
        put(metrics.PERF_EV_DELIVERED_KWH, sid, s["delivered_kwh"])
        put(metrics.PERF_EV_REQUESTED_KWH, sid, s["requested_kwh"])


def evaluate_and_publish(engine: Engine, site: str, now: TimeLike) -> int:
    """The scheduler's job body: evaluate the finished intervals, then set the gauges over the last
    :data:`GAUGE_WINDOW`. Returns how many intervals were evaluated."""
    done = evaluate_finished(engine, site, now)
    end = to_utc(now).floor(pd.Timedelta(minutes=get_site(engine, site).resolution_min))
    publish_gauges(performance_kpis(engine, site, end - GAUGE_WINDOW, end))
    return done
