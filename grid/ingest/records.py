"""The record frame: raw input readings as read, before validation, one row per record.

Every source (CSV, JSON payload, MQTT message) turns its input into this frame, so that one
validation path applies to all. Columns (strings unless noted; missing ones may be absent):

line       int, the file line (1-based, header = line 1); -1 when there is none
where      location used in error messages; when absent: ``"<source name> line <line>"``
meter_id   meter identifier (with `obis` names the sensor)
obis       OBIS code, e.g. ``1-0:1.8.0``
sensor     sensor name, an alternative to meter_id + obis (e.g. ``temp_degc``)
sensor_hint  a name tried first, falling back to meter_id + obis (wide CSV columns)
timestamp  ISO 8601; naive wall times need a declared time zone
value      number or text
unit       unit of `value` (converted to the sensor's unit where possible)
quality    optional: measured (default) or estimated
raw        the record as read; when absent it is rebuilt from the fields
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

FIELDS = ["meter_id", "timestamp", "obis", "value", "unit"]
COLUMNS = [
    "line",
    "where",
    "meter_id",
    "obis",
    "sensor",
    "timestamp",
    "value",
    "unit",
    "quality",
    "raw",
]


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A record frame from dicts with the keys of :data:`COLUMNS` (missing keys become empty)."""
    data: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for rec in records:
        for c in COLUMNS:
            data[c].append(rec.get(c, -1 if c == "line" else None))
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()})
    frame["line"] = frame["line"].astype("int64")
    return frame


def empty_frame() -> pd.DataFrame:
    return records_frame([])


def raw_of(records: pd.DataFrame, index: np.ndarray) -> list[str]:
    """The raw text of the records at positions `index`."""
    if "raw" in records and records["raw"].notna().any():
        col = records["raw"].to_numpy(dtype=object)[index]
        if all(isinstance(v, str) for v in col):
            return list(col)
    present = [c for c in FIELDS if c in records]
    cols = [records[c].to_numpy(dtype=object)[index] for c in present]
    return [",".join("" if _missing(v) else str(v) for v in row) for row in zip(*cols, strict=True)]


def text_of(value: Any) -> str | None:
    """A field value as text for an error report (None when missing)."""
    return None if _missing(value) else str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
