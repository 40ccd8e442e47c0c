"""Time axes: UTC interval starts on a fixed resolution, local-day boundaries, ISO 8601 parsing.

Convention: a value stamped t covers [t, t + resolution). Everything inside is tz-aware UTC; local
time (Europe/Berlin by default) only appears when parsing input and when cutting local days, which
have 92, 96 or 100 quarter-hours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from grid.errors import InputError

UTC = dt.UTC


def horizon_index(start: pd.Timestamp | dt.datetime, hours: float, resolution_min: int = 15) -> pd.DatetimeIndex:
    """UTC interval starts from `start` (tz-aware) for `hours` hours at `resolution_min` minutes."""
    start_ts = to_utc(start)
    check_on_grid(start_ts, resolution_min, "start")
    steps = round(hours * 60 / resolution_min)
    if steps <= 0:
        raise InputError("hours", "must give at least one interval", hours)
    return pd.date_range(start_ts, periods=steps, freq=f"{resolution_min}min", tz="UTC")


def local_day_index(day: dt.date, tz: str = "Europe/Berlin", resolution_min: int = 15) -> pd.DatetimeIndex:
    """UTC interval starts covering one local calendar day (92/96/100 quarter-hours in Berlin)."""
    zone = ZoneInfo(tz)
    begin = pd.Timestamp(dt.datetime.combine(day, dt.time(0), zone)).tz_convert("UTC")
    end = pd.Timestamp(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)).tz_convert("UTC")
    return pd.date_range(begin, end, freq=f"{resolution_min}min", tz="UTC", inclusive="left")


def to_utc(ts: pd.Timestamp | dt.datetime | str) -> pd.Timestamp:
    """A tz-aware timestamp in UTC; naive input is refused (we never guess a time zone)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise InputError("timestamp", "has no UTC offset (write e.g. 2026-01-15T17:30:00+01:00)", str(ts))
    return stamp.tz_convert("UTC")


def check_on_grid(ts: pd.Timestamp, resolution_min: int, where: str) -> None:
    """Raise unless `ts` is a multiple of the resolution after the hour (in UTC)."""
    seconds = int(ts.timestamp())
    if seconds % (resolution_min * 60) != 0 or ts.microsecond or ts.nanosecond:
        raise InputError(where, f"not on the {resolution_min}-minute grid", ts.isoformat())


def parse_local(text: str, tz: str, where: str) -> pd.Timestamp:
    """Parse an ISO 8601 timestamp; a naive one is read as wall time in `tz`.

    Wall times that do not exist (the skipped hour in spring) or are ambiguous (the repeated hour in
    autumn) are refused with a message that says so, instead of being shifted silently.
    """
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise InputError(where, "timestamp is not ISO 8601", text) from exc
    if stamp is pd.NaT:
        raise InputError(where, "timestamp is empty", text)
    if stamp.tzinfo is not None:
        return stamp.tz_convert("UTC")
    try:
        local = stamp.tz_localize(tz, nonexistent="raise", ambiguous="raise")
    except ValueError as exc:
        if "nonexistent" in str(exc):
            what = f"timestamp {text} does not exist in {tz} (skipped at the DST change)"
        else:
            what = f"timestamp {text} is ambiguous in {tz} (repeated hour); give a UTC offset"
        raise InputError(where, what) from exc
    return local.tz_convert("UTC")


def iso(ts: pd.Timestamp | dt.datetime) -> str:
    """ISO 8601 in UTC with an explicit +00:00 offset."""
    return pd.Timestamp(ts).tz_convert("UTC").isoformat()


def merged_within(
    ranges: list[tuple[pd.Timestamp, pd.Timestamp]], lo: pd.Timestamp, hi: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Half-open time ranges cut to [lo, hi), the empty ones dropped, merged where they overlap or
    touch, in order."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for f, t in sorted((max(f, lo), min(t, hi)) for f, t in ranges if min(t, hi) > max(f, lo)):
        if out and f <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], t))
        else:
            out.append((f, t))
    return out
