"""Field checks shared by the live inputs (telemetry, EV sessions, prices, weather, limit orders).

Each check returns the value in canonical form or raises :class:`InputError` whose ``where`` is
the field's name, so that every entry point can say which field of which record is at fault.
Instants must carry a UTC offset (we never guess a zone for live data) and lie in the years the
store can hold; they are kept to whole seconds (the store's resolution on SQLite).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pandas as pd

from grid.errors import InputError
from grid.ingest.payload import unstorable
from grid.ingest.stamps import END, FIRST

_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
MAX_TEXT = 200


def instant(value: Any, field: str) -> pd.Timestamp:
    """An ISO 8601 instant with UTC offset, as a UTC timestamp floored to the second."""
    if not isinstance(value, str):
        raise InputError(field, "must be an ISO 8601 time with UTC offset (a string)", value)
    return _instant(value, field)


@functools.lru_cache(maxsize=4096)
def _instant(value: str, field: str) -> pd.Timestamp:
    """:func:`instant` of a string, kept: the items of one message mostly share their time (a
    Timestamp is immutable; a refusal raises each time, it is not kept)."""
    text = value.strip()
    if not _OFFSET.search(text):
        raise InputError(field, "has no UTC offset (write e.g. 2026-01-15T17:30:00+01:00)", value)
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        raise InputError(field, "is not an ISO 8601 time", value) from None
    if stamp.tzinfo is None:  # pragma: no cover - the offset pattern matched
        raise InputError(field, "has no UTC offset", value)
    stamp = stamp.tz_convert("UTC")
    if not FIRST <= stamp < END:
        raise InputError(field, f"is out of range ({FIRST.year} to {END.year})", value)
    return stamp.floor("s")


def number(value: Any, field: str, low: float | None = None, high: float | None = None) -> float:
    """A finite JSON number (not a bool, not text) within [low, high] when given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, "must be a number", value)
    out = float(value)
    if not math.isfinite(out):
        raise InputError(field, "must be a finite number", str(value))
    if low is not None and out < low:
        raise InputError(field, f"must be >= {low:g}", value)
    if high is not None and out > high:
        raise InputError(field, f"must be <= {high:g}", value)
    return out


def text(value: Any, field: str, max_len: int = MAX_TEXT) -> str:
    """A non-empty string that can be stored (no NUL, no lone surrogate), at most `max_len` long."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "must be a non-empty string", value)
    why = unstorable(value)
    if why is not None:
        raise InputError(field, why, value.encode("utf-8", "backslashreplace").decode("utf-8"))
    if len(value) > max_len:
        raise InputError(field, f"must be at most {max_len} characters", value[:40] + "...")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(field, "must be true or false", value)
    return value


def check_keys(item: Any, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """`item` as a dict with only `allowed` keys and every `required` one."""
    if not isinstance(item, dict):
        raise InputError("payload", "must be a JSON object", type(item).__name__)
    unknown = sorted(str(k) for k in set(item) - allowed)
    if unknown:
        raise InputError(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in item:
            raise InputError(key, "is missing")
    return item
