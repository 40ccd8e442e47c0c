"""CSV import end to end on SQLite and PostgreSQL: counts add up, idempotent, revisions kept."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.csvfile import read_csv
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest
from grid.ingest.report import IngestReport

WriteCsv = Callable[..., Path]
NOW = pd.Timestamp("2026-06-01T00:00:00Z")


def run(store: Engine, path: Path, **kwargs: object) -> IngestReport:
    fmt = kwargs.pop("fmt", "long")
    unit = kwargs.pop("unit", None)
    records, rejected, source = read_csv(path, fmt, unit)  # type: ignore[arg-type]
    report = ingest(store, "s1", records, source, IngestOptions(now=NOW, **kwargs), rejected)  # type: ignore[arg-type]
    assert report.balanced
    return report


def counts(report: IngestReport) -> tuple[int, int, int, int]:
    return report.accepted, report.duplicates, report.revised, len(report.rejected)


def table(store: Engine, sql: str) -> list[tuple[object, ...]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def register_rows(meter: str, values: list[float], start: str = "2026-01-15T00:00:00+00:00") -> list[str]:
    stamps = pd.date_range(start, periods=len(values), freq="15min")
    return [f"{meter},{t.isoformat()},1-0:1.8.0,{v},kWh" for t, v in zip(stamps, values, strict=True)]


def test_ingest_twice_is_idempotent_and_a_change_is_a_revision(
    store: Engine, sensors: dict[str, int], write_csv: WriteCsv
) -> None:
    path = write_csv("a.csv", register_rows("m1", [100.0, 100.5, 101.0, 102.0]))
    assert counts(run(store, path)) == (4, 0, 0, 0)
    before = table(store, "SELECT sensor_id, value FROM readings ORDER BY sensor_id, ts")
    assert counts(run(store, path)) == (0, 4, 0, 0)
    assert table(store, "SELECT sensor_id, value FROM readings ORDER BY sensor_id, ts") == before
    # the third register reading changes: two interval values change with it
    changed = write_csv("b.csv", register_rows("m1", [100.0, 100.5, 101.25, 102.0]))
    assert counts(run(store, changed)) == (0, 3, 1, 0)
    assert [v for _, v in table(store, "SELECT sensor_id, value FROM readings ORDER BY ts")] == [
        0.5,
        0.75,
        0.75,
    ]
    revs = table(store, "SELECT series, old_value, new_value FROM revisions ORDER BY series, ts")
    assert revs == [("reading", 0.5, 0.75), ("reading", 1.0, 0.75), ("register", 101.0, 101.25)]
    assert table(store, "SELECT quality FROM register_readings WHERE value = 101.25") == [("revised",)]


def test_files_that_continue_each_other_and_arrive_out_of_order(
    store: Engine, sensors: dict[str, int], write_csv: WriteCsv
) -> None:
    rows = register_rows("m2", [10.0, 11.0, 12.5, 13.0, 15.0, 15.5])
    later = write_csv("later.csv", rows[3:][::-1])  # reversed inside, and before the earlier file
    earlier = write_csv("earlier.csv", rows[:3])
    assert counts(run(store, later)) == (3, 0, 0, 0)
    assert counts(run(store, earlier)) == (3, 0, 0, 0)
    values = [v for (v,) in table(store, "SELECT value FROM readings ORDER BY ts")]
    assert values == [1.0, 1.5, 0.5, 2.0, 0.5]  # the interval across the two files is there


def test_reset_gap_and_interpolation_are_flagged(store: Engine, sensors: dict[str, int], write_csv: WriteCsv) -> None:
    rows = register_rows("m1", [50.0, 51.0, 2.0, 3.0, 0, 0, 7.0])
    del rows[4:6]  # a gap of three intervals between 3.0 and 7.0
    report = run(store, write_csv("r.csv", rows), interpolate=True)
    assert counts(report) == (5, 0, 0, 0)
    assert [(f.kind, f.start[11:16], f.end[11:16]) for f in report.flags] == [
        ("reset", "00:15", "00:30"),
        ("gap", "00:45", "01:30"),
    ]
    got = table(store, "SELECT value, quality FROM readings ORDER BY ts")
    assert got == [
        (1.0, "measured"),
        (1.0, "measured"),
        (4 / 3, "estimated"),
        (4 / 3, "estimated"),
        (4 / 3, "estimated"),
    ]
    assert len(table(store, "SELECT * FROM flags")) == 2
    # the missing readings arrive: measured values replace the estimates, the gap flag goes
    fill = register_rows("m1", [4.0, 6.5], start="2026-01-15T01:00:00+00:00")
    report = run(store, write_csv("fill.csv", fill))
    assert counts(report) == (2, 0, 0, 0)
    assert report.flags == []  # nothing left to flag between 00:45 and 01:30
    assert table(store, "SELECT value, quality FROM readings ORDER BY ts")[2:] == [
        (1.0, "measured"),
        (2.5, "measured"),
        (0.5, "measured"),
    ]
    assert table(store, "SELECT kind FROM flags") == [("reset",)]


def test_rejections_are_stored_with_their_batch(store: Engine, sensors: dict[str, int], write_csv: WriteCsv) -> None:
    rows = [
        *register_rows("m1", [1.0, 2.0]),
        "zz,2026-01-15T00:30:00Z,1-0:1.8.0,3,kWh",
        "m1,2026-01-15T00:45:00Z,1-0:1.8.0,abc,kWh",
    ]
    report = run(store, write_csv("x.csv", rows))
    assert counts(report) == (2, 0, 0, 2)
    stored = table(store, "SELECT line, field, value, location FROM rejected_records ORDER BY line")
    assert stored == [(4, "meter_id", "zz", "x.csv line 4"), (5, "value", "abc", "x.csv line 5")]
    batch = table(store, "SELECT rows_read, accepted, duplicates, revised, rejected, source FROM batches")
    assert batch == [(4, 2, 0, 0, 2, "x.csv")]


def test_wide_gzip_file_with_units_and_sensor_columns(store: Engine, sensors: dict[str, int], tmp_path: Path) -> None:
    text = "timestamp,m1,pv1/1-0:2.8.0,temp_degc\n2026-01-15T00:00:00Z,1000,0,3.5\n2026-01-15T00:15:00Z,1500,,4.0\n"
    path = tmp_path / "wide.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    report = run(store, path, fmt="wide")
    # temp_degc is in degC; m1 and pv1 are read in the sensor's unit (kWh)
    assert counts(report) == (5, 0, 0, 0)
    wh = tmp_path / "wide_wh.csv"
    wh.write_text("timestamp,m1\n2026-01-15T00:00:00Z,1000000\n2026-01-15T00:15:00Z,1500000\n")
    assert counts(run(store, wh, fmt="wide", unit="Wh")) == (0, 2, 0, 0)  # 1000000 Wh == 1000 kWh


def test_report_json_lists_every_rejection(
    store: Engine, sensors: dict[str, int], write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = [
        "m1,2026-01-15T00:00:00Z,1-0:1.8.0,1,kWh",
        "m1,2026-01-15T00:15:00Z,1-0:1.8.0",
        "m1,2026-01-15T00:07:00Z,1-0:1.8.0,2,kWh,x,y",
    ]
    report = run(store, write_csv("j.csv", rows))
    out = tmp_path / "report.json"
    report.write_json(out)
    doc = json.loads(out.read_text())
    assert (doc["rows_read"], doc["accepted"], doc["duplicates"], doc["revised"]) == (3, 1, 0, 0)
    assert [(r["line"], r["field"]) for r in doc["rejected"]] == [(3, "line"), (4, "line")]
