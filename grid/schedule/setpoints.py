"""Per-asset set-points for "now" and the next intervals, cut from a stored plan.

Sign convention as in the plan: ``power_kw > 0`` draws from the grid node (consumption, charging),
``< 0`` feeds in (generation, discharging). A value at interval start t covers [t, t + resolution).
Household (inflexible) load is not a set-point and is left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from grid.timeindex import iso

NOT_SETPOINTS = {"inflexible_load"}


def current_step(body: dict[str, Any], now: dt.datetime) -> int:
    """Index of the plan interval containing `now` (0 before the plan, the last one after it)."""
    start = dt.datetime.fromisoformat(body["start"])
    pos = int((now - start) // dt.timedelta(minutes=int(body["resolution_min"])))
    return min(max(pos, 0), len(body["intervals"]) - 1)


def setpoints(
    body: dict[str, Any], now: dt.datetime, horizon: int, stale: bool = False, stale_reason: str = ""
) -> dict[str, Any]:
    """Set-points of every controllable asset for the interval containing `now` and the next
    ``horizon - 1`` intervals (fewer at the end of the plan).

    A plan whose end has passed is still served (never an empty answer) but marked stale.
    """
    step = current_step(body, now)
    res = pd.Timedelta(minutes=int(body["resolution_min"]))
    starts = body["intervals"][step : step + max(horizon, 1)]
    valid_until = iso(pd.Timestamp(starts[-1]) + res)
    if pd.Timestamp(now).tz_convert("UTC") >= pd.Timestamp(body["end"]):
        reason = f"plan ended at {body['end']}"
        stale, stale_reason = True, f"{stale_reason}; {reason}" if stale_reason else reason
    assets = {
        aid: {
            "type": data.get("type", ""),
            "connection": data.get("connection"),
            "power_kw": list(data["power_kw"][step : step + len(starts)]),
        }
        for aid, data in body["assets"].items()
        if data.get("type") not in NOT_SETPOINTS and isinstance(data.get("power_kw"), list)
    }
    return {
        "site": body["site"],
        "plan_id": body["plan_id"],
        "status": body["status"],
        "computed_at": body["computed_at"],
        "valid_until": valid_until,
        "stale": stale,
        "stale_reason": stale_reason,
        "resolution_min": int(body["resolution_min"]),
        "intervals": list(starts),
        "assets": assets,
    }
