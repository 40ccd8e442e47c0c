"""What a run takes from the store besides forecasts: measured states, EV sessions and limit orders.

The planner never plans from a number that could have been measured without saying so:

- storage states come from telemetry (see ``grid.schedule.state`` for the measured / estimated /
  assumed order);
- EV sessions come from the store's session events (arrivals, changes, plug-outs); the site
  file's sessions only seed the store when the site is registered. A site the store does not
  know yet (a plain ``grid plan`` on a file) plans its file's sessions and the plan says so;
- grid-operator limit orders active in the horizon lower the connections' limits in the
  intervals they overlap (an order covering part of an interval holds for all of it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from grid.domain import EVSession, Site
from grid.errors import InputError
from grid.schedule.performance import performance_kpis
from grid.schedule.state import Measured
from grid.series import SiteInputs
from grid.store import live
from grid.store.sites import get_site
from grid.timeindex import iso


class StoredStates:
    """The planner's state source: the latest state telemetry (kWh) in the store at `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, site: Site, at: pd.Timestamp) -> Mapping[str, Measured]:
        stores = [b.id for b in site.batteries] + [h.id for h in site.heat_pumps]  # what the planner reads
        rows = live.latest_states(self.engine, site.id, at, stores)
        return {aid: Measured(value, pd.Timestamp(when).tz_convert("UTC")) for aid, (value, _, when) in rows.items()}


def registered(engine: Engine, site_id: str) -> bool:
    try:
        get_site(engine, site_id)
    except InputError:
        return False
    return True


def planned_sessions(
    engine: Engine,
    site: Site,
    start: pd.Timestamp,
    end: pd.Timestamp,
    previous_plan: Mapping[str, Any] | None = None,
) -> tuple[list[EVSession], dict[str, dict[str, Any]]]:
    """(the EV sessions plugged in at some time in [start, end) with what each still needs at
    `start`, the need state per session id for the plan).

    A car that has been charging since before `start` needs its request minus what it got: the
    charger's measured energy since the arrival where telemetry covers every interval
    (``measured``), else what the previous plan delivered by `start` (``estimated``), else all of
    it (``assumed``: it just arrived, or nothing is known). For a site registered in the store
    (see :func:`registered`; an unregistered one plans its file's sessions)."""
    known = {c.id: c for c in site.ev_chargers}
    out: list[EVSession] = []
    states: dict[str, dict[str, Any]] = {}
    sessions = [s for s in live.sessions_in(engine, site.id, start, end) if s.charger in known]
    res = pd.Timedelta(minutes=site.site.resolution_min)
    earliest = min((s.arrival.floor(res) for s in sessions if s.arrival < start), default=None)
    # one read of the chargers' measured power since the earliest arrival, for all sessions
    power = live.device_power(engine, site.id, earliest, start, assets=list(known)) if earliest is not None else None
    for stored in sessions:
        session = stored.to_domain()
        if session.departure <= session.arrival:
            continue
        got, source = _delivered_so_far(site, stored, start, power, previous_plan, known[stored.charger].efficiency)
        remaining = max(session.energy_needed_kwh - got, 0.0)
        update: dict[str, Any] = {"energy_needed_kwh": remaining}
        if session.capacity_kwh is not None:
            soc = (session.initial_soc or 0.0) + got / session.capacity_kwh
            update["initial_soc"] = min(max(soc, 0.0), 1.0)
        out.append(session.model_copy(update=update))
        states[session.id] = {
            "requested_kwh": round(session.energy_needed_kwh, 6),
            "delivered_kwh": round(got, 6),
            "remaining_kwh": round(remaining, 6),
            "source": source,
            "at": iso(start),
        }
    return out, states


def _delivered_so_far(
    site: Site,
    stored: live.StoredSession,
    start: pd.Timestamp,
    power: pd.DataFrame | None,
    previous_plan: Mapping[str, Any] | None,
    efficiency: float,
) -> tuple[float, str]:
    """Energy into the car between its arrival and `start` (kWh) and how it is known; `power` is
    the chargers' measured power (:func:`grid.store.live.device_power`) up to `start`."""
    if stored.arrival >= start:
        return 0.0, "assumed"
    res = pd.Timedelta(minutes=site.site.resolution_min)
    if power is not None and stored.charger in power.columns:
        there = power.loc[power.index >= stored.arrival.floor(res), stored.charger]  # every interval it was there
        if len(there) and there.notna().all():
            dt_h = site.site.resolution_min / 60.0
            return float(there.clip(lower=0.0).sum() * dt_h * efficiency), "measured"
    planned = _planned_session(previous_plan, stored.session_id)
    if planned is not None:
        energy, times, needed = planned
        if times[0].value <= start.value <= times[-1].value:
            got_since = float(np.interp(start.value, [t.value for t in times], energy)) - energy[0]
            already = float(stored.energy_needed_kwh) - needed  # what the plan before knew was in
            return max(already + got_since, 0.0), "estimated"
    return 0.0, "assumed"


def _planned_session(
    plan: Mapping[str, Any] | None, session_id: str
) -> tuple[list[float], list[pd.Timestamp], float] | None:
    """(the car's planned energy at every interval start and the end, those instants, the need the
    plan was given) of `session_id` in `plan`; None if the plan does not hold it."""
    if not plan or plan.get("status") == "failed":
        return None
    for asset in (plan.get("assets") or {}).values():
        planned = (asset.get("sessions") or {}).get(session_id)
        if planned is None:
            continue
        energy = planned.get("energy_kwh") or []
        times = [pd.Timestamp(t) for t in plan.get("intervals") or []] + [pd.Timestamp(plan["end"])]
        if len(energy) != len(times) or "needed_kwh" not in planned:
            return None
        return [float(e) for e in energy], times, float(planned["needed_kwh"])
    return None


def ended_sessions(
    engine: Engine, site: Site, previous_plan: Mapping[str, Any] | None, start: pd.Timestamp
) -> list[dict[str, Any]]:
    """Sessions the previous plan held that ended early (plugged out by `start`, before their
    expected departure): what the car asked for, what it got and what it missed (kWh). Delivered
    energy is the charger's measured power over the session when telemetry covers it
    (``measured``), else the previous plan's remaining need at the plug-out (``estimated``)."""
    if not previous_plan:
        return []
    out = []
    for charger_id, asset in (previous_plan.get("assets") or {}).items():
        for sid, planned in (asset.get("sessions") or {}).items():
            stored = live.get_session(engine, site.id, sid)
            if stored is None or stored.plugged_out_at is None:
                continue
            left = stored.plugged_out_at
            if left > start or left >= stored.departure:
                continue
            out.append(_ended(engine, site, charger_id, stored, planned, previous_plan))
    return out


def _ended(
    engine: Engine,
    site: Site,
    charger_id: str,
    stored: live.StoredSession,
    planned: Mapping[str, Any],
    plan: Mapping[str, Any],
) -> dict[str, Any]:
    left = stored.plugged_out_at
    assert left is not None
    requested = float(stored.energy_needed_kwh)
    power = live.device_power(engine, site.id, stored.arrival.floor(f"{site.site.resolution_min}min"), left)
    dt_h = site.site.resolution_min / 60.0
    measured = charger_id in power.columns and power[charger_id].notna().all() and len(power)
    if measured:
        delivered = float(power[charger_id].clip(lower=0.0).sum() * dt_h)
        missed, source = max(requested - delivered, 0.0), "measured"
    else:
        energy = planned.get("energy_kwh") or []
        times = [pd.Timestamp(t) for t in plan.get("intervals") or []] + [pd.Timestamp(plan["end"])]
        got = (
            float(np.interp(left.value, [t.value for t in times], energy)) - energy[0]
            if len(energy) == len(times)
            else 0.0
        )
        missed = max(float(planned.get("required_kwh", requested)) - got, 0.0)
        delivered, source = max(requested - missed, 0.0), "estimated"
    return {
        "session_id": stored.session_id,
        "charger": charger_id,
        "plugged_out_at": iso(left),
        "expected_departure": iso(stored.departure),
        "requested_kwh": round(requested, 6),
        "delivered_kwh": round(delivered, 6),
        "missed_kwh": round(missed, 6),
        "source": source,
    }


#: how far back a run looks to say how well the plans before it were followed
FOLLOWED_LOOKBACK = pd.Timedelta(hours=1)


def last_hour_followed(engine: Engine, site: Site, start: pd.Timestamp) -> dict[str, Any] | None:
    """How well the plans of the hour before `start` were followed, from the stored evaluation
    (``grid.schedule.performance``): per connection the intervals above the limit, per asset the
    share of intervals whose measured power kept its set-point."""
    kpis = performance_kpis(engine, site.id, start - FOLLOWED_LOOKBACK, start, ev_sessions=False)
    shares = [a["followed_share"] for a in kpis["assets"].values() if a.get("followed_share") is not None]
    return {
        "start": kpis["start"],
        "end": kpis["end"],
        "evaluated_intervals": kpis["evaluated_intervals"],
        "intervals_above_limit": {cid: c["intervals_above_limit"] for cid, c in kpis["connections"].items()},
        "assets_measured": len(shares),
        "mean_followed_share": round(sum(shares) / len(shares), 4) if shares else None,
        "not_followed": sorted(
            aid
            for aid, a in kpis["assets"].items()
            if a.get("followed_share") is not None and a["followed_share"] < 0.5
        ),
    }


def limit_orders(engine: Engine, site: Site, start: pd.Timestamp, end: pd.Timestamp) -> list[live.LimitOrder]:
    """Orders for connections of `site` active in [start, end)."""
    known = {c.id for c in site.connections}
    return [o for o in live.active_orders(engine, site.id, start, end) if o.connection in known]


def with_orders(inputs: SiteInputs, orders: Sequence[live.LimitOrder], resolution_min: int) -> SiteInputs:
    """`inputs` with the orders as per-interval limits (the lowest order where several overlap)."""
    if not orders:
        return inputs
    return dataclasses.replace(
        inputs,
        ordered_import_kw=_ordered(inputs.ordered_import_kw, orders, "import_kw", inputs.index, resolution_min),
        ordered_export_kw=_ordered(inputs.ordered_export_kw, orders, "export_kw", inputs.index, resolution_min),
    )


def _ordered(
    frame: pd.DataFrame | None,
    orders: Sequence[live.LimitOrder],
    direction: str,
    index: pd.DatetimeIndex,
    resolution_min: int,
) -> pd.DataFrame | None:
    """Per connection and interval of `index` the lowest `direction` limit of the orders that
    overlap the interval, combined with `frame`'s (NaN: none)."""
    starts = index.as_unit("ns").asi8
    ends = (index + pd.Timedelta(minutes=resolution_min)).as_unit("ns").asi8
    values: dict[str, np.ndarray] = {}
    if frame is not None:
        values = {str(c): frame[c].to_numpy(dtype=float).copy() for c in frame.columns}
    for order in orders:
        limit = getattr(order, direction)
        if limit is None:
            continue
        hit = (starts < order.end.as_unit("ns").value) & (ends > order.start.as_unit("ns").value)
        column = values.setdefault(order.connection, np.full(len(index), np.nan))
        column[hit] = np.fmin(column[hit], float(limit))
    return pd.DataFrame(values, index=index) if values else frame
