"""JSON bulk payloads (the API's input) go through the same path as CSV files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.ingest.options import IngestOptions
from grid.ingest.payload import parse_payload
from grid.ingest.pipeline import ingest
from grid.ingest.report import Source


def test_payload_with_sensor_names_units_and_quality(sqlite_store: Engine) -> None:
    doc = {
        "readings": [
            {"meter_id": "m4", "obis": "1-0:1.7.0", "ts": "2026-01-15T01:00:00+01:00", "value": 2500, "unit": "W"},
            {"sensor": "temp_degc", "timestamp": "2026-01-15T00:00:00Z", "value": -3.5, "unit": "degC"},
            {
                "meter_id": "m3",
                "obis": "1-0:1.29.0",
                "ts": "2026-01-15T00:00:00Z",
                "value": 0.4,
                "unit": "kWh",
                "quality": "estimated",
            },
        ]
    }
    records, rejected = parse_payload(json.dumps(doc))
    report = ingest(
        sqlite_store,
        "s1",
        records,
        Source("api", "payload"),
        IngestOptions(now=pd.Timestamp("2026-06-01", tz="UTC")),
        rejected,
    )
    assert (report.accepted, report.rejected) == (3, [])
    with sqlite_store.connect() as conn:
        rows = conn.exec_driver_sql("SELECT value, unit, quality, source FROM readings ORDER BY value").all()
    assert [tuple(r) for r in rows] == [
        (-3.5, "degC", "measured", "api"),
        (0.4, "kWh", "estimated", "api"),
        (2.5, "kW", "measured", "api"),
    ]


def test_a_document_that_is_not_a_payload_is_refused_whole() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        parse_payload(b"{readings: []}")
    with pytest.raises(InputError, match="'readings' list"):
        parse_payload({"items": []})


class _Text(str):
    """A text of a subclass of str (what a JSON reader with hooks may give)."""


def test_cells_that_are_not_scalars_are_refused_for_their_field(sqlite_store: Engine) -> None:
    """A list or dict in a cell is refused naming its field and shown as its text; numbers of
    numpy types, bools and texts of str subclasses are taken as they are (one odd cell in a
    column of plain ones is found too)."""
    import numpy as np

    from grid.ingest.records import records_frame

    base = {"obis": "1-0:1.29.0", "unit": "kWh"}
    records = records_frame(
        [
            {**base, "meter_id": "m3", "timestamp": "2026-01-15T00:00:00Z", "value": "0.4"},
            {**base, "meter_id": "m3", "timestamp": "2026-01-15T00:15:00Z", "value": [1, 2]},
            {**base, "meter_id": {"id": "m3"}, "timestamp": "2026-01-15T00:30:00Z", "value": "0.1"},
            {**base, "meter_id": "m3", "timestamp": "2026-01-15T00:45:00Z", "value": np.float64(0.2)},
            {**base, "meter_id": _Text("m3"), "timestamp": "2026-01-15T01:00:00Z", "value": 0.3},
            {**base, "meter_id": "m3", "timestamp": "2026-01-15T01:15:00Z", "value": True},
        ]
    )
    report = ingest(
        sqlite_store, "s1", records, Source("api", "payload"), IngestOptions(now=pd.Timestamp("2026-06-01", tz="UTC"))
    )
    assert [(r.field, r.value) for r in report.rejected] == [("value", "[1, 2]"), ("meter_id", "{'id': 'm3'}")]
    assert report.accepted == 4
