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
