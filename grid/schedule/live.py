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

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from grid.domain import EVSession, Site
from grid.errors import InputError
from grid.schedule.state import Measured
from grid.series import SiteInputs
from grid.store import live
from grid.store.sites import get_site


class StoredStates:
    """The planner's state source: the latest state telemetry (kWh) in the store at `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, site: Site, at: pd.Timestamp) -> Mapping[str, Measured]:
        rows = live.latest_states(self.engine, site.id, at)
        return {aid: Measured(value, pd.Timestamp(when).tz_convert("UTC")) for aid, (value, _, when) in rows.items()}


def registered(engine: Engine, site_id: str) -> bool:
    try:
        get_site(engine, site_id)
    except InputError:
        return False
    return True


def planned_sessions(engine: Engine, site: Site, start: pd.Timestamp, end: pd.Timestamp) -> tuple[list[EVSession], str]:
    """(the EV sessions plugged in at some time in [start, end), where they came from)."""
    if not registered(engine, site.id):
        return list(site.ev_sessions), "site file (the site is not registered in the store)"
    known = {c.id for c in site.ev_chargers}
    stored = [s.to_domain() for s in live.sessions_in(engine, site.id, start, end) if s.charger in known]
    return [s for s in stored if s.departure > s.arrival], "store (session events)"


def limit_orders(engine: Engine, site: Site, start: pd.Timestamp, end: pd.Timestamp) -> list[live.LimitOrder]:
    """Orders for connections of `site` active in [start, end)."""
    known = {c.id for c in site.connections}
    if not registered(engine, site.id):
        return []
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
