"""Where each storage asset starts a run: measured, else estimated from the last plan, else assumed.

For every battery and heat-pump store of a site, the state at the run's start (kWh; a battery's
state of charge, a heat store's thermal content) comes from, in this order:

1. ``measured``: the latest telemetry at or before the start, if not older than ``max_age``
   (default 30 min, ``GRID_STATE_MAX_AGE_MIN``);
2. ``estimated``: the previous good plan's trajectory at the start instant (linear between its
   interval starts), if that plan covers the instant;
3. ``assumed``: the site file's ``initial_soc`` / ``initial_store``.

Anything but a fresh measurement is a warning in the plan, never silent. A measured state outside
the asset's usable range is planned from the nearest bound (the LP's bounds would make the plan
infeasible) and that is a warning too, naming both numbers.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from grid.domain import Site
from grid.timeindex import iso

Source = Literal["measured", "estimated", "assumed"]

DEFAULT_MAX_AGE_MIN = 30.0


def max_age_from_env() -> dt.timedelta:
    """``GRID_STATE_MAX_AGE_MIN`` (minutes, > 0) or the default of 30 min."""
    raw = os.environ.get("GRID_STATE_MAX_AGE_MIN", "")
    minutes = DEFAULT_MAX_AGE_MIN
    if raw.strip():
        try:
            minutes = float(raw)
        except ValueError as exc:
            raise ValueError(f"GRID_STATE_MAX_AGE_MIN={raw!r}: not a number of minutes") from exc
        if not minutes > 0:
            raise ValueError(f"GRID_STATE_MAX_AGE_MIN={raw!r}: must be > 0 minutes")
    return dt.timedelta(minutes=minutes)


@dataclass(frozen=True)
class Measured:
    """A stored state measurement: `value_kwh` measured at `measured_at` (UTC)."""

    value_kwh: float
    measured_at: pd.Timestamp


#: state_source(site, at) -> the latest state measurement of each storage asset at or before `at`
StateSource = Callable[[Site, pd.Timestamp], Mapping[str, Measured]]


@dataclass(frozen=True)
class InitialState:
    """The state an asset starts the run with, as the plan JSON shows it."""

    value: float
    unit: str
    source: Source
    at: pd.Timestamp | None  # when it was measured / the plan instant it was read at; None: assumed
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": round(self.value, 6),
            "unit": self.unit,
            "source": self.source,
            "at": iso(self.at) if self.at is not None else None,
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class StartState:
    """The site to plan (initial states replaced) with what the plan must say about them."""

    site: Site
    states: dict[str, InitialState] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def resolve_start_state(
    site: Site,
    start: pd.Timestamp,
    measured: Mapping[str, Measured],
    previous_plan: Mapping[str, Any] | None,
    max_age: dt.timedelta = dt.timedelta(minutes=DEFAULT_MAX_AGE_MIN),
    now: pd.Timestamp | None = None,
) -> StartState:
    """The start state of every battery and heat store of `site` for a run planning from `start`
    (UTC, an interval start) at `now` (default `start`): a measurement taken up to `now` and not
    older than `max_age` there counts (the run's first interval is under way when it runs); see the
    module docstring for the order of sources."""
    out = StartState(site)
    at = pd.Timestamp(now) if now is not None else start
    ctx = _Context(start, at, measured, previous_plan, max_age, _knots(previous_plan))
    bats, hps = [], []
    for bat in site.batteries:
        state, frac = _resolve(bat.id, bat.capacity_kwh, bat.initial_soc, (bat.soc_min, bat.soc_max), ctx)
        out.states[bat.id] = state
        bats.append(bat.model_copy(update={"initial_soc": frac}))
    for hp in site.heat_pumps:
        state, frac = _resolve(hp.id, hp.store_kwh, hp.initial_store, (0.0, 1.0), ctx)
        out.states[hp.id] = state
        hps.append(hp.model_copy(update={"initial_store": frac}))
    out.site = site.model_copy(update={"batteries": bats, "heat_pumps": hps})
    out.warnings = [_warning(aid, s, max_age) for aid, s in out.states.items() if s.source != "measured" or s.note]
    return out


@dataclass(frozen=True)
class _Context:
    start: pd.Timestamp
    now: pd.Timestamp
    measured: Mapping[str, Measured]
    previous_plan: Mapping[str, Any] | None
    max_age: dt.timedelta
    #: the previous plan's interval starts and its end (ns), read once for all its assets
    knots: np.ndarray | None = None


def _resolve(
    asset_id: str, capacity_kwh: float, file_fraction: float, usable: tuple[float, float], ctx: _Context
) -> tuple[InitialState, float]:
    """(the state to show, the fraction of capacity to plan from)."""
    start, max_age = ctx.start, ctx.max_age
    if capacity_kwh <= 0:  # nothing to hold: the state is trivially 0
        return InitialState(0.0, "kWh", "assumed", None), file_fraction
    m = ctx.measured.get(asset_id)
    if m is not None and m.measured_at <= ctx.now and ctx.now - m.measured_at <= max_age:
        lo, hi = usable[0] * capacity_kwh, usable[1] * capacity_kwh
        planned = min(max(m.value_kwh, lo), hi)
        note = ""
        if planned != m.value_kwh:
            note = (
                f"measured {m.value_kwh:.3f} kWh is outside the usable {lo:.3f}..{hi:.3f} kWh;"
                f" planned from {planned:.3f}"
            )
        return InitialState(m.value_kwh, "kWh", "measured", m.measured_at, note), planned / capacity_kwh
    estimate = _from_plan(asset_id, start, ctx.previous_plan, ctx.knots)
    if estimate is not None:
        lo, hi = usable[0] * capacity_kwh, usable[1] * capacity_kwh
        value = min(max(estimate, lo), hi)  # the plan kept its bounds; this only trims rounding
        note = _stale_note(m, ctx.now)
        return InitialState(value, "kWh", "estimated", start, note), value / capacity_kwh
    return InitialState(file_fraction * capacity_kwh, "kWh", "assumed", None, _stale_note(m, ctx.now)), file_fraction


def _stale_note(m: Measured | None, now: pd.Timestamp) -> str:
    if m is None:
        return ""
    if m.measured_at > now:
        return f"the latest measurement ({iso(m.measured_at)}) is later than the run ({iso(now)})"
    return f"the latest measurement is from {iso(m.measured_at)}"


def _knots(plan: Mapping[str, Any] | None) -> np.ndarray | None:
    """The interval starts of `plan` and its end (UTC, ns as floats); None for no usable plan."""
    if not plan or plan.get("status") == "failed" or not plan.get("intervals"):
        return None
    times = pd.DatetimeIndex(pd.to_datetime(plan["intervals"], utc=True, format="ISO8601"))
    end = pd.Timestamp(plan["end"]).tz_convert("UTC")
    return np.append(times.as_unit("ns").asi8, end.value).astype(float)


def _from_plan(
    asset_id: str, start: pd.Timestamp, plan: Mapping[str, Any] | None, knots: np.ndarray | None = None
) -> float | None:
    """The previous plan's state of `asset_id` at `start` (kWh), linear between interval starts;
    None if the plan has no such trajectory or does not cover `start`. `knots`: the plan's
    :func:`_knots`, when already read."""
    if knots is None:
        knots = _knots(plan)
    if knots is None or plan is None:
        return None
    asset = (plan.get("assets") or {}).get(asset_id) or {}
    soc = asset.get("soc_kwh")
    if not isinstance(soc, list) or len(soc) != len(knots):
        return None
    values = np.array([np.nan if v is None else float(v) for v in soc])
    x = float(pd.Timestamp(start).tz_convert("UTC").value)
    if not knots[0] <= x <= knots[-1] or np.isnan(values).any():
        return None
    return float(np.interp(x, knots, values))


def _warning(asset_id: str, state: InitialState, max_age: dt.timedelta) -> str:
    minutes = round(max_age.total_seconds() / 60)
    if state.source == "measured":
        return f"{asset_id}: {state.note}"
    why = f"no measurement in the last {minutes} min" + (f" ({state.note})" if state.note else "")
    if state.source == "estimated":
        return f"{asset_id}: start state estimated from the previous plan, {why}"
    return f"{asset_id}: start state assumed from the site file, {why}"
