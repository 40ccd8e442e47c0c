"""Timestamps of a record column: parsed once per distinct text, vectorised.

Text with an offset is converted to UTC. Naive text is refused unless a time zone is declared;
then wall times are localised: the skipped hour in spring is refused, and the repeated hour in
autumn is resolved *by order* (:func:`resolve_repeated_hour`) or refused. Instants outside
[:data:`FIRST`, :data:`END`) are refused as out of range (year 1 and 9999 parse, but are no meter
reading and do not fit the nanosecond arithmetic downstream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.timeindex import parse_local

NS = 1_000_000_000
_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_NAT = np.iinfo(np.int64).min
FIRST = pd.Timestamp("1970-01-01T00:00:00Z")  #: earliest instant accepted (inclusive)
END = pd.Timestamp("2200-01-01T00:00:00Z")  #: latest instant accepted (exclusive)
_RANGE_US = (FIRST.value // 1000, END.value // 1000)
OUT_OF_RANGE = f"timestamp is out of range (accepted: {FIRST.isoformat()} to {END.isoformat()}, exclusive)"


@dataclass
class ParsedStamps:
    """Per record: `ns` (UTC epoch nanoseconds, or _NAT), `reason` (None when fine), and for the
    repeated autumn hour `ambiguous` with both candidates `dst_ns` / `std_ns` and the wall time."""

    ns: np.ndarray
    reason: np.ndarray
    ambiguous: np.ndarray
    dst_ns: np.ndarray
    std_ns: np.ndarray
    wall_ns: np.ndarray


def _as_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds; _NAT for NaT and for instants out of range (:func:`_out_of_range`)."""
    us = index.as_unit("us").asi8
    bad = np.asarray(index.isna()) | (us < _RANGE_US[0]) | (us >= _RANGE_US[1])
    return np.where(bad, _NAT, np.where(bad, 0, us) * 1000)


def _out_of_range(index: pd.DatetimeIndex) -> np.ndarray:
    """Parsed instants outside [FIRST, END)."""
    us = index.as_unit("us").asi8
    return ~np.asarray(index.isna()) & ((us < _RANGE_US[0]) | (us >= _RANGE_US[1]))


def parse_stamps(texts: pd.Series, tz: str | None) -> ParsedStamps:
    """Parse a column of timestamp texts (see the module docstring)."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).map(lambda v: str(v).strip())
    m = len(text)
    ns = np.full(m, _NAT, dtype=np.int64)
    reason = np.full(m, None, dtype=object)
    ambiguous = np.zeros(m, dtype=bool)
    dst_ns = np.full(m, _NAT, dtype=np.int64)
    std_ns = np.full(m, _NAT, dtype=np.int64)
    wall_ns = np.full(m, _NAT, dtype=np.int64)
    empty = (text == "").to_numpy()
    reason[empty] = "timestamp is empty"
    has_offset = text.map(lambda t: bool(_OFFSET.search(t))).to_numpy() & ~empty
    if has_offset.any():
        parsed = pd.DatetimeIndex(pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce"))
        ns[has_offset] = _as_ns(parsed)
        reason[np.flatnonzero(has_offset)[_out_of_range(parsed)]] = OUT_OF_RANGE
    naive = ~has_offset & ~empty
    if naive.any():
        local = pd.DatetimeIndex(pd.to_datetime(text[naive], format="ISO8601", errors="coerce"))
        idx = np.flatnonzero(naive)
        far = _out_of_range(local)
        reason[idx[far]] = OUT_OF_RANGE
        local, idx = local[~far], idx[~far]
        if tz is None:
            ok = ~np.asarray(local.isna())
            reason[idx[ok]] = "timestamp has no UTC offset and no time zone was declared (--tz)"
        else:
            _localise(local, tz, idx, ns, reason, ambiguous, dst_ns, std_ns, wall_ns)
    for i in np.flatnonzero((ns == _NAT) & (reason == None) & ~ambiguous):  # noqa: E711
        reason[i] = _why_unparsable(text.iloc[i], tz)
    full = np.where(codes >= 0, codes, 0)
    missing = codes < 0

    def spread(values: np.ndarray, fill: object) -> np.ndarray:
        out = values[full] if m else np.full(len(codes), fill, dtype=values.dtype)
        out[missing] = fill
        return out

    return ParsedStamps(
        ns=spread(ns, _NAT),
        reason=spread(reason, "timestamp is empty"),
        ambiguous=spread(ambiguous, False),
        dst_ns=spread(dst_ns, _NAT),
        std_ns=spread(std_ns, _NAT),
        wall_ns=spread(wall_ns, _NAT),
    )


def _localise(
    local: pd.DatetimeIndex,
    tz: str,
    idx: np.ndarray,
    ns: np.ndarray,
    reason: np.ndarray,
    ambiguous: np.ndarray,
    dst_ns: np.ndarray,
    std_ns: np.ndarray,
    wall_ns: np.ndarray,
) -> None:
    n = len(local)
    plain = local.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    as_dst = local.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
    as_std = local.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
    parsed = ~np.asarray(local.isna())
    skipped = parsed & np.asarray(as_dst.isna())
    repeated = parsed & np.asarray(plain.isna()) & ~skipped
    ns[idx] = _as_ns(plain)
    ambiguous[idx[repeated]] = True
    dst_ns[idx] = _as_ns(as_dst)
    std_ns[idx] = _as_ns(as_std)
    wall_ns[idx] = _as_ns(local)
    wall = list(local.strftime("%Y-%m-%dT%H:%M:%S"))
    for j in np.flatnonzero(skipped).tolist():
        reason[idx[j]] = f"timestamp {wall[j]} does not exist in {tz} (skipped at the DST change)"


def _why_unparsable(text: str, tz: str | None) -> str:
    try:
        parse_local(text, tz or "UTC", "timestamp")
    except InputError as exc:
        return exc.what
    return "timestamp is not ISO 8601"


def resolve_repeated_hour(wall_ns: np.ndarray) -> np.ndarray:
    """Which readings of the repeated autumn hour are the first pass (summer time) and which the
    second (standard time), from their order in the input for one sensor and day.

    The first pass ends where the wall clock goes back (a repeated equal wall time is a duplicate,
    not a step back). Returns int8: 1 first pass, 0 second pass, -1 cannot tell: no step back
    seen (the order does not say which pass these are), or readings after a second step back (a
    third pass does not exist).
    """
    out = np.full(len(wall_ns), -1, dtype=np.int8)
    back = np.flatnonzero(np.diff(wall_ns) < 0) + 1
    if len(back) == 0:
        return out
    out[: back[0]] = 1
    out[back[0] : back[1] if len(back) > 1 else len(out)] = 0
    return out
