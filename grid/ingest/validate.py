"""One validation path for every source: record frame -> valid values + rejected records.

Checks, in this order (a record is rejected for the first that fails, naming field and value):

1. sensor known (meter_id + obis, or sensor name) at the site
2. timestamp: present, ISO 8601, with an offset or a declared time zone; not in the skipped spring
   hour; the repeated autumn hour resolved by order or refused (:mod:`grid.ingest.stamps`)
3. timestamp on the site's resolution grid (UTC)
4. timestamp not beyond now + tolerance
5. value: a finite number
6. unit: the sensor's unit, or convertible to it (Wh/kWh/MWh, W/kW/MW)
7. no negative energy where impossible (registers, and energy sensors without allow_negative)
8. mean power within the sensor's plausibility limit (energy and power sensors; registers are
   checked after differencing, see :mod:`grid.ingest.registers`)
9. quality, when given: measured or estimated

Values leave in the sensor's canonical unit (kWh, kW, degC, W/m2), timestamps as UTC epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from grid.ingest.options import IngestOptions
from grid.ingest.records import raw_of, text_of
from grid.ingest.report import Rejected
from grid.ingest.stamps import NS, ParsedStamps, parse_stamps, resolve_repeated_hour
from grid.store.catalog import CONVERSIONS, convertible_units
from grid.store.schema import QUALITY_CODES, Measure, Quality

VALID_COLUMNS = ["pos", "sensor_id", "ts_s", "value", "quality"]


@dataclass
class Validated:
    """`valid`: pos (record position), sensor_id, ts_s, value (canonical unit), quality (code);
    `rejected`: one entry per refused record, in record order."""

    valid: pd.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    deferred: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


#: A column of a record frame: a Series as read (arrow strings from a CSV, objects from JSON), or
#: an object array (None when the frame lacks the column).
Column = np.ndarray | pd.Series


def _pick(values: Column, idx: np.ndarray) -> np.ndarray:
    """values[idx] as an object array."""
    if isinstance(values, pd.Series):
        return values.iloc[idx].to_numpy(dtype=object)
    return np.asarray(values[idx], dtype=object)


class _Rejections:
    """Collects rejections; each record is rejected at most once (for its first failing check)."""

    def __init__(self, n: int) -> None:
        self.ok = np.ones(n, dtype=bool)
        self.parts: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []

    def add(self, mask: np.ndarray, fld: str, reason: object, values: Column) -> None:
        hit = mask & self.ok
        idx = np.flatnonzero(hit)
        if len(idx) == 0:
            return
        reasons = reason[idx] if isinstance(reason, np.ndarray) else np.full(len(idx), reason, dtype=object)
        self.parts.append((idx, fld, reasons, _pick(values, idx)))
        self.ok &= ~hit


#: cell types that are scalars as they are (subclasses and numpy numbers are checked one by one)
_PLAIN_CELLS = frozenset({type(None), str, int, float})
_CHECKED = ("meter_id", "obis", "sensor", "sensor_hint", "timestamp", "value", "unit", "quality")


def _scalars(records: pd.DataFrame) -> pd.DataFrame:
    """`records` with every cell of the checked columns a scalar: a list, dict or other object
    (possible in a frame built from JSON) becomes its text, so that it is rejected for its field
    like any other wrong text instead of breaking the grouping by value."""
    fixed = {}
    for name in _CHECKED:
        if name in records and records[name].dtype == object:
            cells = records[name].to_numpy()
            if set(map(type, cells)) <= _PLAIN_CELLS:  # the usual column: no cell to look at
                continue
            odd = [i for i, v in enumerate(cells) if not (v is None or isinstance(v, str | int | float | np.number))]
            if odd:
                cells = cells.copy()
                cells[odd] = [repr(cells[i]) for i in odd]
                fixed[name] = pd.Series(cells, index=records.index, dtype=object)
    return records.assign(**fixed) if fixed else records


def _column(records: pd.DataFrame, name: str) -> Column:
    if name not in records:
        return np.full(len(records), None, dtype=object)
    return records[name]


def _codes(values: Column) -> tuple[np.ndarray, list[str]]:
    """Codes and distinct stripped texts of a column ('' for missing)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = [str(u).strip() for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(text), codes)
        text.append("")
    return np.asarray(codes, dtype=np.int64), text


def _strip(values: Column) -> np.ndarray:
    """Stripped text per record ('' for missing)."""
    codes, text = _codes(values)
    return np.asarray(text, dtype=object)[codes] if len(codes) else np.zeros(0, dtype=object)


def _combined(columns: list[Column]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Codes of the distinct combinations of several text columns, and those combinations."""
    parts = [_codes(c) for c in columns]
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for codes, text in parts:
        key = key * (len(text) + 1) + codes
    codes, uniques = pd.factorize(key)
    first = np.zeros(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    combos = [tuple(text[c[i]] for c, text in parts) for i in first]
    return codes, combos


def _resolve_sensors(records: pd.DataFrame, sensors: pd.DataFrame, site_id: str, rej: _Rejections) -> np.ndarray:
    n = len(records)
    by_key = {(m, o): i for i, m, o in zip(sensors["id"], sensors["meter_id"], sensors["obis"], strict=True) if m}
    by_name = dict(zip(sensors["name"], sensors["id"], strict=True))
    meters: dict[str, list[str]] = {}
    for m, o in by_key:
        meters.setdefault(m, []).append(o)
    columns = [_column(records, c) for c in ("meter_id", "obis", "sensor", "sensor_hint")]
    codes, uniques = _combined(columns)
    sid_u = np.full(len(uniques), -1, dtype=np.int64)
    field_u = np.full(len(uniques), "", dtype=object)
    reason_u = np.full(len(uniques), "", dtype=object)
    value_u = np.full(len(uniques), "", dtype=object)
    for j, (m, o, s, h) in enumerate(uniques):
        value_u[j] = m
        if h and h in by_name:
            sid_u[j] = by_name[h]
        elif s:
            if s in by_name:
                sid_u[j] = by_name[s]
            else:
                field_u[j], reason_u[j], value_u[j] = (
                    "sensor",
                    f"unknown sensor {s!r} at site {site_id}",
                    s,
                )
        elif not m:
            field_u[j], reason_u[j] = "meter_id", "meter_id is empty"
        elif not o:
            field_u[j], reason_u[j], value_u[j] = "obis", "obis is empty", o
        elif (m, o) in by_key:
            sid_u[j] = by_key[(m, o)]
        elif m in meters:
            known = ", ".join(sorted(meters[m]))
            field_u[j], value_u[j] = "obis", o
            reason_u[j] = f"unknown sensor: meter {m} has no OBIS {o} (known: {known})"
        else:
            field_u[j] = "meter_id"
            reason_u[j] = f"unknown sensor: no meter {m!r} at site {site_id}"
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sid = sid_u[codes]
    bad = sid < 0
    fields, reasons, values = field_u[codes], reason_u[codes], value_u[codes]
    for fld in ("sensor", "meter_id", "obis"):
        rej.add(bad & (fields == fld), fld, reasons, values)
    return sid


def _resolve_repeated(
    records_pos: np.ndarray, sid: np.ndarray, amb: np.ndarray, stamps: ParsedStamps
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the repeated autumn hour per sensor and day by record order; returns the new ns
    values and a mask of records that could not be resolved."""
    ns = stamps.ns.copy()
    unresolved = np.zeros(len(ns), dtype=bool)
    idx = np.flatnonzero(amb)
    if len(idx) == 0:
        return ns, unresolved
    day = stamps.wall_ns[idx] // (86_400 * NS)
    frame = pd.DataFrame({"i": idx, "sid": sid[idx], "day": day, "pos": records_pos[idx]})
    for _, group in frame.sort_values("pos", kind="stable").groupby(["sid", "day"], sort=False):
        rows = group["i"].to_numpy()
        passes = resolve_repeated_hour(stamps.wall_ns[rows])
        ns[rows] = np.where(passes == 1, stamps.dst_ns[rows], stamps.std_ns[rows])
        unresolved[rows[passes < 0]] = True
    return ns, unresolved


def _parse_values(raw_values: Column, rej: _Rejections) -> np.ndarray:
    numbers = _to_float(raw_values)
    bad = ~np.isfinite(numbers) & rej.ok
    reasons = np.full(len(numbers), "", dtype=object)
    bad_idx = np.flatnonzero(bad)
    for i, raw in zip(bad_idx.tolist(), _pick(raw_values, bad_idx), strict=True):
        text = text_of(raw)
        if text is None or not text.strip():
            reasons[i] = "value is empty"
            continue
        try:
            float(text)
        except ValueError:
            reasons[i] = "value is not a number"
        else:
            reasons[i] = "value is not finite (NaN or infinity)"
    rej.add(bad, "value", reasons, raw_values)
    return numbers


def _to_float(raw_values: Column) -> np.ndarray:
    """Numbers of a value column, NaN where there is none. A column of text (a CSV) is cast by
    Arrow when every cell is a plain number, an order of magnitude faster than pandas."""
    if isinstance(raw_values, pd.Series) and pd.api.types.is_string_dtype(raw_values.dtype):
        try:
            cast = pc.cast(pa.array(raw_values), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass  # some cell is not a plain number: pandas says which (NaN) below
        else:
            if cast.null_count == 0:
                return cast.to_numpy(zero_copy_only=False)
    series = raw_values if isinstance(raw_values, pd.Series) else pd.Series(raw_values, dtype=object)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _unit_factors(units: tuple[np.ndarray, list[str]], canonical: np.ndarray, rej: _Rejections) -> np.ndarray:
    """Conversion factor per record from its unit (codes, texts) to its sensor's `canonical`
    unit; NaN (and a rejection) where there is none."""
    unit_codes, unit_text = units
    canon_codes, canon_text = _codes(canonical)
    key = unit_codes * (len(canon_text) + 1) + canon_codes
    codes, uniques = pd.factorize(key)
    factor_u = np.full(len(uniques), np.nan)
    reason_u = np.full(len(uniques), "", dtype=object)
    for j, k in enumerate(np.asarray(uniques, dtype=np.int64).tolist()):
        unit, canon = unit_text[k // (len(canon_text) + 1)], canon_text[k % (len(canon_text) + 1)]
        hit = CONVERSIONS.get(unit.lower())
        if unit == canon:
            factor_u[j] = 1.0
        elif hit is not None and hit[0] == canon:
            factor_u[j] = hit[1]
        elif not unit:
            reason_u[j] = f"unit is empty (the sensor's unit is {canon})"
        else:
            accepted = ", ".join(convertible_units(canon))
            reason_u[j] = f"unit {unit!r} does not match the sensor's unit {canon} (accepted: {accepted})"
    factor = factor_u[codes] if len(codes) else np.zeros(0)
    rej.add(
        np.isnan(factor),
        "unit",
        reason_u[codes] if len(codes) else np.zeros(0, dtype=object),
        np.asarray(unit_text, dtype=object)[unit_codes] if len(unit_codes) else np.zeros(0, dtype=object),
    )
    return factor


def validate(
    records: pd.DataFrame,
    sensors: pd.DataFrame,
    site_id: str,
    resolution_min: int,
    options: IngestOptions,
    location: str,
    defer_ambiguous: bool = False,
) -> Validated:
    """Check `records` (a record frame) against the site's `sensors` (:func:`grid.store.sites.
    sensor_frame`); `location` prefixes line numbers in error messages (e.g. the file name).

    With `defer_ambiguous`, records in the repeated autumn hour (naive local times) are neither
    valid nor rejected but returned as `deferred` positions: a reader that validates a file chunk
    by chunk validates them together at the end, where their order tells the passes apart.
    """
    records = _scalars(records)
    n = len(records)
    rej = _Rejections(n)
    pos = np.arange(n)
    sid = _resolve_sensors(records, sensors, site_id, rej)
    sensor_of = _SensorColumns(sensors, sid)

    ts_text = _column(records, "timestamp")
    stamps = parse_stamps(ts_text if isinstance(ts_text, pd.Series) else pd.Series(ts_text, dtype=object), options.tz)
    rej.add(stamps.reason != None, "timestamp", stamps.reason, ts_text)  # noqa: E711
    deferred = np.zeros(0, dtype=np.int64)
    if defer_ambiguous:
        deferred = np.flatnonzero(stamps.ambiguous & rej.ok)
        rej.ok[deferred] = False
    ns, unresolved = _resolve_repeated(pos, sid, stamps.ambiguous & rej.ok, stamps)
    rej.add(
        unresolved,
        "timestamp",
        f"timestamp is in the repeated hour at the end of summer time in {options.tz} and the "
        "order of the readings does not tell which pass it is; give a UTC offset",
        ts_text,
    )
    step_ns = resolution_min * 60 * NS
    rej.add(ns % step_ns != 0, "timestamp", f"not on the {resolution_min}-minute grid (UTC)", ts_text)
    ts_s = ns // NS
    limit_s = options.now_s() + options.future_tolerance_s
    rej.add(
        ts_s > limit_s,
        "timestamp",
        f"in the future (later than now + {options.future_tolerance_s} s)",
        ts_text,
    )

    raw_values = _column(records, "value")
    value = _parse_values(raw_values, rej)
    canonical = sensor_of("unit", object)
    # no unit column at all (a wide CSV without --unit): values are in each sensor's own unit
    units = _codes(_column(records, "unit") if "unit" in records else canonical)
    value = value * _unit_factors(units, canonical, rej)

    measure = sensor_of("measure", object)
    is_register = measure == Measure.REGISTER.value
    is_energy = measure == Measure.ENERGY.value
    allow_negative = sensor_of("allow_negative", bool)
    with np.errstate(invalid="ignore"):
        negative = value < 0
    rej.add(
        negative & is_register,
        "value",
        "negative register reading (a cumulative register is >= 0)",
        raw_values,
    )
    rej.add(
        negative & is_energy & ~allow_negative,
        "value",
        "negative energy is impossible for this sensor",
        raw_values,
    )
    limit = sensor_of("max_power_kw", float)
    mean_kw = np.where(is_energy, value * 60.0 / resolution_min, np.abs(value))
    checked = is_energy | (measure == Measure.POWER.value)
    with np.errstate(invalid="ignore"):
        implausible = checked & ~np.isnan(limit) & (mean_kw > limit)
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(implausible & rej.ok):
        reasons[i] = f"implausible: mean power {mean_kw[i]:.3f} kW exceeds the limit {limit[i]:g} kW"
    rej.add(implausible, "value", reasons, raw_values)

    q_codes, q_text = _codes(_column(records, "quality"))
    q_known = {"": QUALITY_CODES[Quality.MEASURED]}
    q_known |= {q.value: QUALITY_CODES[q] for q in (Quality.MEASURED, Quality.ESTIMATED)}
    quality_u = np.asarray([q_known.get(t, -1) for t in q_text], dtype=np.int64)
    quality = quality_u[q_codes] if len(q_codes) else np.zeros(0, dtype=np.int64)
    quality_text = np.asarray(q_text, dtype=object)[q_codes] if len(q_codes) else np.zeros(0, dtype=object)
    rej.add(quality < 0, "quality", "quality must be 'measured' or 'estimated'", quality_text)

    ok = rej.ok
    valid = pd.DataFrame(
        {
            "pos": pos[ok],
            "sensor_id": sid[ok],
            "ts_s": ts_s[ok],
            "value": value[ok],
            "quality": quality[ok],
        }
    )
    return Validated(valid, _rejected_list(records, rej, location), deferred)


class _SensorColumns:
    """A column of the sensor of each record (`sid`; -1 for none: the first sensor's value,
    irrelevant as such a record is rejected already), taken by position (no frame per record)."""

    def __init__(self, sensors: pd.DataFrame, sid: np.ndarray) -> None:
        self.sensors = sensors
        at = sensors.index.get_indexer(pd.Index(sid)) if len(sensors) else np.zeros(len(sid), dtype=np.int64)
        self.at = np.where(at >= 0, at, 0)

    def __call__(self, name: str, dtype: type) -> np.ndarray:
        if not len(self.sensors):
            fill: object = np.nan if dtype is float else False if dtype is bool else None
            return np.full(len(self.at), fill, dtype=dtype)
        return self.sensors[name].to_numpy().astype(dtype)[self.at]


def reject_rows(records: pd.DataFrame, idx: np.ndarray, fld: str, reasons: np.ndarray, location: str) -> list[Rejected]:
    """Rejections of the records at positions `idx` of `records` for `fld`, one reason each
    (for checks made after validation, e.g. register spikes)."""
    if len(idx) == 0:
        return []
    rej = _Rejections(len(records))
    mask = np.zeros(len(records), dtype=bool)
    mask[idx] = True
    per_record = np.full(len(records), "", dtype=object)
    per_record[idx] = reasons
    rej.add(mask, fld, per_record, _column(records, fld))
    return _rejected_list(records, rej, location)


def _rejected_list(records: pd.DataFrame, rej: _Rejections, location: str) -> list[Rejected]:
    if not rej.parts:
        return []
    idx = np.concatenate([p[0] for p in rej.parts])
    fields = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in rej.parts])
    reasons = np.concatenate([p[2] for p in rej.parts])
    values = np.concatenate([p[3] for p in rej.parts])
    order = np.argsort(idx, kind="stable")
    idx, fields, reasons, values = idx[order], fields[order], reasons[order], values[order]
    lines = records["line"].to_numpy()[idx] if "line" in records else np.full(len(idx), -1)
    wheres = _pick(_column(records, "where"), idx)
    raws = raw_of(records, idx)
    out = []
    for i, line in enumerate(lines):
        where = wheres[i] if isinstance(wheres[i], str) else f"{location} line {int(line)}"
        out.append(
            Rejected(
                where=where,
                field=str(fields[i]),
                value=text_of(values[i]),
                reason=str(reasons[i]),
                raw=raws[i],
                line=int(line) if line >= 0 else None,
            )
        )
    return out
