"""Signals from outside: day-ahead prices, weather forecasts and grid-operator limit orders.

A price or weather publication is one document (a file, a request body), stored whole or not at
all: every problem is reported in one pass (:class:`InputErrors`), each naming the point and field
(``prices[3].price``, ``prices.csv line 5: price``).

Points cover [start, end) with ``end - start`` 15 or 60 minutes (``end`` defaults to start plus
the resolution given, or found from the spacing of the starts); a point starts on its own grid
(a quarter-hour, an hour); points do not overlap. Prices come in EUR/MWh (the market's unit),
EUR/kWh or ct/kWh and are stored in EUR/kWh; they must lie within the market's harmonised
clearing-price limits (:data:`PRICE_MIN_EUR_PER_MWH`, :data:`PRICE_MAX_EUR_PER_MWH`). Each
publication has a ``published_at`` (not in the future) and a ``source`` name.

A limit order names a ``connection`` of the site, ``start`` and ``end`` (ISO 8601 with offset,
end after start and not yet past), ``import_kw`` and/or ``export_kw`` (>= 0) and a ``reason``
(``§14a``, ``congestion``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from grid.errors import InputError, InputErrors
from grid.ingest import fields
from grid.store.live import LimitOrder, add_order, site_assets, store_prices, store_weather

#: SDAC harmonised clearing-price limits of the day-ahead market (EUR/MWh); plausibility bounds
PRICE_MIN_EUR_PER_MWH = -500.0
PRICE_MAX_EUR_PER_MWH = 4000.0
PRICE_UNITS = {"eur/mwh": 1e-3, "eur/kwh": 1.0, "ct/kwh": 1e-2}
#: weather quantities and their plausible range
WEATHER_QUANTITIES: dict[str, tuple[float, float]] = {
    "temp_degc": (-60.0, 60.0),
    "ghi_w_per_m2": (0.0, 1500.0),
    "cloud_cover_pct": (0.0, 100.0),  # total cloud cover; PV converts it to GHI where no GHI is published
    "wind_m_per_s": (0.0, 80.0),
}
RESOLUTIONS_MIN = (15, 60)
#: a publication stamped later than the receiving clock by more than this is refused
FUTURE_TOLERANCE = pd.Timedelta(minutes=5)
POINT_KEYS = {"start", "end", "price", "value"}


@dataclass(frozen=True)
class Point:
    """One point as read: where it is (``prices[3]``, ``prices.csv line 5``), its fields."""

    where: str
    data: Any


def located(err: InputError, where: str) -> InputError:
    """`err` at `where` (the point or record and field)."""
    return InputError(where, err.what, err.value) if err.has_value else InputError(where, err.what)


def _where(point: Point, field: str) -> str:
    sep = ": " if " line " in point.where else "."
    return f"{point.where}{sep}{field}"


def parse_points(
    points: Sequence[Point],
    value_field: str,
    factor: float,
    bounds: tuple[float, float],
    resolution_min: int | None = None,
) -> pd.DataFrame:
    """Points -> frame (start, end, value x `factor`) sorted by start; raises InputErrors naming
    every bad point and field. `bounds` apply to the value as given (before `factor`)."""
    errors: list[InputError] = []
    if resolution_min is not None and resolution_min not in RESOLUTIONS_MIN:
        raise InputError("resolution_min", f"must be one of {RESOLUTIONS_MIN}", resolution_min)
    if not points:
        raise InputError(value_field + "s", "holds no points")
    rows: list[tuple[str, pd.Timestamp, pd.Timestamp | None, float]] = []
    for p in points:
        try:
            data = fields.check_keys(p.data, {"start", "end", value_field}, ("start", value_field))
            start = fields.instant(data["start"], "start")
            end = fields.instant(data["end"], "end") if "end" in data else None
            value = fields.number(data[value_field], value_field, *bounds)
        except InputError as err:
            errors.append(located(err, _where(p, err.where)))
            continue
        rows.append((p.where, start, end, value * factor))
    if errors:
        raise InputErrors(errors)
    step = pd.Timedelta(minutes=resolution_min) if resolution_min else _step(rows)
    if step / pd.Timedelta(minutes=1) not in RESOLUTIONS_MIN and any(r[2] is None for r in rows):
        raise InputError(
            "resolution_min",
            f"points without end are {step / pd.Timedelta(minutes=1):g} minutes apart: "
            "give resolution_min (15 or 60) or each point's end",
        )
    frame: list[tuple[pd.Timestamp, pd.Timestamp, float]] = []
    for where, start, end, value in sorted(rows, key=lambda r: r[1]):
        length = (end - start) if end is not None else step
        minutes = length / pd.Timedelta(minutes=1)
        if minutes not in RESOLUTIONS_MIN:
            errors.append(InputError(_where(Point(where, None), "end"), "must be 15 or 60 minutes after start", end))
            continue
        if int(start.timestamp()) % int(length.total_seconds()):
            errors.append(InputError(_where(Point(where, None), "start"), f"not on the {minutes:g}-minute grid", start))
            continue
        if frame and start < frame[-1][1]:
            errors.append(
                InputError(_where(Point(where, None), "start"), "overlaps the point before", start.isoformat())
            )
            continue
        frame.append((start, start + length, value))
    if errors:
        raise InputErrors(errors)
    return pd.DataFrame(frame, columns=["start", "end", "value"])


def _step(rows: list[tuple[str, pd.Timestamp, pd.Timestamp | None, float]]) -> pd.Timedelta:
    """The resolution of points without ``end``: their smallest spacing (one point alone: 1 h)."""
    starts = sorted({r[1] for r in rows})
    if len(starts) < 2:
        return pd.Timedelta(hours=1)
    return min(b - a for a, b in itertools.pairwise(starts))


def _published(value: Any, now: pd.Timestamp) -> pd.Timestamp:
    published = fields.instant(value, "published_at")
    if published > now + FUTURE_TOLERANCE:
        raise InputError("published_at", f"is in the future (now {now.isoformat()})", value)
    return published


def price_factor(unit: Any) -> float:
    if not isinstance(unit, str) or unit.strip().lower() not in PRICE_UNITS:
        raise InputError("unit", "must be EUR/MWh, EUR/kWh or ct/kWh", unit)
    return PRICE_UNITS[unit.strip().lower()]


def price_bounds(factor: float) -> tuple[float, float]:
    """The price limits in the unit given (EUR/MWh x 1e-3 / factor)."""
    return PRICE_MIN_EUR_PER_MWH * 1e-3 / factor, PRICE_MAX_EUR_PER_MWH * 1e-3 / factor


def import_prices(
    engine: Engine,
    area: str,
    points: Sequence[Point],
    unit: Any,
    published_at: Any,
    source: str,
    now: pd.Timestamp,
    resolution_min: int | None = None,
) -> pd.DataFrame:
    """Check and store one publication of prices for `area`; returns the stored frame (EUR/kWh)."""
    factor = price_factor(unit)
    published = _published(published_at, now)
    frame = parse_points(points, "price", factor, price_bounds(factor), resolution_min)
    store_prices(engine, area, frame, published, source, now)
    return frame


def import_weather(
    engine: Engine,
    area: str,
    quantity: Any,
    points: Sequence[Point],
    published_at: Any,
    source: str,
    now: pd.Timestamp,
    resolution_min: int | None = None,
) -> pd.DataFrame:
    """Check and store one publication of a weather forecast for `area`."""
    if quantity not in WEATHER_QUANTITIES:
        raise InputError("quantity", f"must be one of {', '.join(WEATHER_QUANTITIES)}", quantity)
    published = _published(published_at, now)
    frame = parse_points(points, "value", 1.0, WEATHER_QUANTITIES[quantity], resolution_min)
    store_weather(engine, area, quantity, frame, published, source, now)
    return frame


def csv_points(path: Path, value_columns: Sequence[str]) -> tuple[list[Point], str]:
    """Points of a CSV with ``start`` (or ``timestamp``), optional ``end`` and one value column
    from `value_columns`; returns them and the value column found. Numbers are read as numbers,
    other text is left for the checks to refuse."""
    name = path.name
    reader = csv.reader(io.StringIO(path.read_bytes().decode("utf-8", errors="replace")))
    header = [h.strip() for h in next(reader, [])]
    starts = [h for h in header if h in ("start", "timestamp")]
    values = [h for h in header if h in value_columns]
    if len(starts) != 1 or len(values) != 1:
        wanted = f"start (or timestamp), optional end, and one of {', '.join(value_columns)}"
        raise InputError(f"{name} line 1", f"header must name {wanted}", ",".join(header))
    points = []
    for row in reader:
        if not row or all(not f.strip() for f in row):
            continue
        where = f"{name} line {reader.line_num}"
        if len(row) != len(header):
            raise InputError(where, f"has {len(row)} fields, the header {len(header)}", ",".join(row))
        record = dict(zip(header, (f.strip() for f in row), strict=True))
        data: dict[str, Any] = {"start": record[starts[0]], "value": record[values[0]]}
        if record.get("end"):
            data["end"] = record["end"]
        with contextlib.suppress(ValueError):
            data["value"] = float(data["value"])
        points.append(Point(where, data))
    return points, values[0]


def validate_order(engine: Engine, site: str, data: Any, now: pd.Timestamp) -> dict[str, Any]:
    """The fields of a limit order, checked against the site's connections (InputErrors naming
    each bad field)."""
    data = fields.check_keys(
        data,
        {"connection", "start", "end", "import_kw", "export_kw", "reason"},
        ("connection", "start", "end", "reason"),
    )
    errors: list[InputError] = []
    out: dict[str, Any] = {"import_kw": None, "export_kw": None}

    def check(name: str, fn: Any, *args: Any) -> None:
        if name not in data or (data[name] is None and name in ("import_kw", "export_kw")):
            return
        try:
            out[name] = fn(data[name], name, *args)
        except InputError as err:
            errors.append(err)

    check("connection", fields.text, 64)
    check("start", fields.instant)
    check("end", fields.instant)
    check("import_kw", fields.number, 0.0)
    check("export_kw", fields.number, 0.0)
    check("reason", fields.text, 200)
    connection = out.get("connection")
    if connection is not None:
        asset = site_assets(engine, site).get(connection)
        if asset is None or asset.kind != "transformer":
            errors.append(InputError("connection", f"unknown connection of site {site!r}", connection))
    if data.get("import_kw") is None and data.get("export_kw") is None:
        errors.append(InputError("import_kw", "give import_kw or export_kw (or both)"))
    if "start" in out and "end" in out:
        if out["end"] <= out["start"]:
            errors.append(InputError("end", f"must be after start ({out['start'].isoformat()})", data["end"]))
        elif out["end"] <= now:
            errors.append(InputError("end", f"is already past (now {now.isoformat()})", data["end"]))
    if errors:
        raise InputErrors(errors)
    return out


def place_order(engine: Engine, site: str, data: Any, now: pd.Timestamp) -> LimitOrder:
    """Check and store a limit order."""
    o = validate_order(engine, site, data, now)
    return add_order(
        engine, site, o["connection"], o["start"], o["end"], o["import_kw"], o["export_kw"], o["reason"], now
    )
