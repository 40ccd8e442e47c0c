"""Measured series for forecasting: CSV import and checks, with errors that name the row.

A load series is ``timestamp,value_kw``: ISO 8601 timestamps *with* a UTC offset (``Z`` or
``+01:00``), strictly increasing, on the 15-minute grid; ``value_kw`` is the mean power (kW) over
[timestamp, timestamp + 15 min). Gaps (missing intervals) are allowed: they become NaN on the
full grid and are skipped by the models and the backtest, never filled. Duplicates, timestamps
that go backwards, offset-less or off-grid timestamps, non-finite values and a value column in
another unit are errors naming the CSV line (header = line 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grid.errors import InputError

RESOLUTION_MIN = 15
VALUE_COLUMN = "value_kw"
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
#: Columns people write instead of value_kw, and how to convert them.
_OTHER_UNITS = {
    "value_kwh": "energy per interval: divide by 0.25 h (x 4) to get mean kW",
    "value_w": "watts: divide by 1000",
    "value_mw": "megawatts: multiply by 1000",
    "value": "unit unknown: name the column value_kw (mean kW per interval)",
}


@dataclass(frozen=True)
class SeriesReport:
    """What the checks found: `n_values` present, `n_missing` gap intervals on the grid."""

    n_values: int
    n_missing: int
    first: pd.Timestamp
    last: pd.Timestamp


def parse_stamps(texts: pd.Series, name: str) -> pd.DatetimeIndex:
    """Parse ISO 8601 timestamps with offsets to UTC; raise naming the first bad line."""
    stripped = texts.astype(str).str.strip()
    has_offset = stripped.str.contains(_OFFSET)
    if not has_offset.all():
        i = int(np.flatnonzero(~has_offset.to_numpy())[0])
        raise InputError(
            f"{name} line {i + 2}", "timestamp has no UTC offset (write e.g. 2026-01-15T17:30:00+01:00)", texts.iloc[i]
        )
    stamps = pd.to_datetime(stripped, utc=True, format="ISO8601", errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{name} line {i + 2}", "timestamp is not ISO 8601", texts.iloc[i])
    return pd.DatetimeIndex(stamps)


def check_axis(stamps: pd.DatetimeIndex, name: str, resolution_min: int = RESOLUTION_MIN) -> None:
    """Raise on the first timestamp that is off the grid, repeated or earlier than its predecessor.

    Line numbers assume row i is CSV line i + 2 (header on line 1).
    """
    seconds = stamps.as_unit("s").asi8
    off = np.flatnonzero(seconds % (resolution_min * 60) != 0)
    if len(off):
        i = int(off[0])
        raise InputError(f"{name} line {i + 2}", f"not on the {resolution_min}-minute grid", stamps[i].isoformat())
    steps = np.diff(seconds)
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        what = "duplicate timestamp" if steps[i - 1] == 0 else "timestamp goes backwards (rows must be increasing)"
        raise InputError(f"{name} line {i + 2}", what, stamps[i].isoformat())


def read_load_csv(path: str | Path, column: str = VALUE_COLUMN) -> tuple[pd.Series, SeriesReport]:
    """Read ``timestamp,value_kw`` into a kW series on the full 15-minute UTC grid (gaps = NaN).

    Parameters
    ----------
    path : CSV file.
    column : name of the value column (mean kW per interval).

    Returns
    -------
    (series named ``power_kw``, report of values present and intervals missing).
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(str(path), f"cannot read CSV ({exc})") from exc
    name = path.name
    if "timestamp" not in raw.columns:
        raise InputError(f"{name} line 1", "has no 'timestamp' column", list(raw.columns))
    if column not in raw.columns:
        others = [c for c in raw.columns if c.lower() in _OTHER_UNITS]
        if others:
            raise InputError(
                f"{name} line 1 column {others[0]}",
                f"expected {column} (mean kW per 15 min); {_OTHER_UNITS[others[0].lower()]}",
                others[0],
            )
        raise InputError(f"{name} line 1", f"has no '{column}' column", list(raw.columns))
    if "unit" in raw.columns:
        wrong = np.flatnonzero(raw["unit"].str.strip().str.lower() != "kw")
        if len(wrong):
            i = int(wrong[0])
            raise InputError(f"{name} line {i + 2} column unit", "must be kW", raw["unit"].iloc[i])
    if raw.empty:
        raise InputError(name, "has no data rows")
    stamps = parse_stamps(raw["timestamp"], name)
    check_axis(stamps, name)
    values = pd.to_numeric(raw[column].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{name} line {i + 2} column {column}", "not a finite number", raw[column].iloc[i])
    return on_grid(pd.Series(values, index=stamps, name="power_kw"))


def on_grid(series: pd.Series, resolution_min: int = RESOLUTION_MIN) -> tuple[pd.Series, SeriesReport]:
    """`series` (sorted, unique, UTC) on its full grid from first to last stamp; gaps become NaN."""
    index = pd.date_range(series.index[0], series.index[-1], freq=f"{resolution_min}min", tz="UTC")
    full = series.reindex(index)
    n_values = int(full.notna().sum())
    report = SeriesReport(n_values, len(full) - n_values, index[0], index[-1])
    full.name = series.name
    return full, report


def check_series(series: pd.Series, where: str = "series", resolution_min: int = RESOLUTION_MIN) -> pd.Series:
    """A series given in Python: tz-aware, increasing, unique, on the grid; returned on the full
    UTC grid (gaps NaN). Raises :class:`InputError` naming the position (row 0-based) otherwise."""
    if not isinstance(series.index, pd.DatetimeIndex):
        raise InputError(where, "needs a DatetimeIndex", type(series.index).__name__)
    if series.index.tz is None:
        raise InputError(f"{where} row 0", "timestamps have no UTC offset (tz-naive index)", str(series.index[0]))
    if len(series) == 0:
        raise InputError(where, "is empty")
    stamps = series.index.tz_convert("UTC")
    seconds = stamps.as_unit("s").asi8
    off = np.flatnonzero(seconds % (resolution_min * 60) != 0)
    if len(off):
        raise InputError(f"{where} row {off[0]}", f"not on the {resolution_min}-minute grid", str(stamps[off[0]]))
    steps = np.diff(seconds)
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        what = "duplicate timestamp" if steps[i - 1] == 0 else "timestamp goes backwards"
        raise InputError(f"{where} row {i}", what, str(stamps[i]))
    values = series.to_numpy(dtype=float)
    inf = np.flatnonzero(np.isinf(values))
    if len(inf):
        raise InputError(f"{where} row {inf[0]}", "not a finite number", float(values[inf[0]]))
    full, _ = on_grid(pd.Series(values, index=stamps, name=series.name), resolution_min)
    return full
