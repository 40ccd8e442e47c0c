"""Query and path parameters as the OpenAPI document states them, and their strict parsing.

Instants (``start``, ``end``, ``as_of``) are RFC 3339 date-times with a UTC offset (``Z`` or
``+01:00``), any year 0001-9999. Instants outside [1900, 2200) are moved to that edge: nothing
can be stored outside, so the answer is the same as for the instant given.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
from fastapi.exceptions import RequestValidationError

#: RFC 3339 ``date-time`` (section 5.6), which is what OpenAPI's ``format: date-time`` means
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: instants a query may reach (outside, timestamps stop being representable everywhere)
EARLIEST, LATEST = pd.Timestamp("1900-01-01T00:00:00Z"), pd.Timestamp("2200-01-01T00:00:00Z")
#: ids of plans, jobs and scenario runs (ours are 32 hex digits); sites as in their YAML
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
SITE_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
INSTANT_SCHEMA: dict[str, Any] = {"format": "date-time"}


def invalid(name: str, msg: str, value: Any, where: str = "query") -> RequestValidationError:
    """A 422 in FastAPI's own shape, located at the parameter `name`."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name), "msg": msg, "input": value}])


def _clean(text: str) -> str:
    """An RFC 3339 date-time as ``datetime.fromisoformat`` reads it: ``T`` and ``Z`` upper-case,
    at most 6 digits of a second, a leap second (``:60``) as the last microsecond of its minute."""
    date_part, rest = text[:10], text[11:]
    if rest[6:8] == "60":
        rest = rest[:6] + "59.999999" + re.sub(r"^60(\.[0-9]+)?", "", rest[6:])
    return re.sub(r"(\.[0-9]{6})[0-9]+", r"\1", f"{date_part}T{rest}").replace("z", "Z")


def parse_instant(text: str, name: str) -> pd.Timestamp:
    """An RFC 3339 instant (``2026-01-15T00:00:00+01:00``, ``...Z``) as a UTC timestamp in
    [EARLIEST, LATEST]; 422 naming `name` for anything else (no offset, no seconds, a bad date)."""
    if not RFC3339.match(text):
        raise invalid(name, "not an RFC 3339 timestamp with UTC offset (e.g. 2026-01-15T00:00:00+01:00)", text)
    try:
        stamp = dt.datetime.fromisoformat(_clean(text))
    except ValueError:
        raise invalid(name, "not a valid date or time (e.g. 2026-01-15T00:00:00+01:00)", text) from None
    try:
        utc = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # the UTC instant falls outside years 1..9999
        return EARLIEST if stamp.year < 2000 else LATEST
    if utc < EARLIEST.to_pydatetime().replace(tzinfo=None):
        return EARLIEST
    if utc >= LATEST.to_pydatetime().replace(tzinfo=None):
        return LATEST
    return pd.Timestamp(utc, tz="UTC").as_unit("us")


def check_period(start: str, end: str, max_span: dt.timedelta) -> None:
    """422 unless `end` is after `start` and at most `max_span` later (both as given, before any
    clamping: a period outside the storable years is checked like any other)."""
    first, last = (dt.datetime.fromisoformat(_clean(t)) for t in (start, end))
    try:
        span = last - first
    except OverflowError:
        span = dt.timedelta.max
    if span <= dt.timedelta(0):
        raise invalid("end", "must be after start", end)
    if span > max_span:
        raise invalid("end", f"the period may span at most {max_span.days} days", end)
