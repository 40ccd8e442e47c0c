"""Streaming CSV ingestion: a file read in many chunks gives the same tables, counts, rejections
and flags as the same file read in one piece, on SQLite and PostgreSQL; the reader keeps line
numbers, checksums and chunk sizes right."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.csvfile import CsvChunks, file_checksum, read_csv
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest, ingest_csv
from grid.ingest.report import IngestReport
from grid.store.testing import demo_sensors, scratch_store

NOW = pd.Timestamp("2026-06-01T00:00:00Z")
HEADER = "meter_id,timestamp,obis,value,unit"
TABLES = {
    "batches": "SELECT id, rows_read, accepted, duplicates, revised, rejected, checksum FROM batches ORDER BY id",
    "readings": "SELECT sensor_id, ts, value, quality, source, batch_id FROM readings ORDER BY 1, 2",
    "register_readings": "SELECT sensor_id, ts, value, quality, batch_id FROM register_readings ORDER BY 1, 2",
    "revisions": "SELECT series, sensor_id, ts, old_value, old_quality, old_source, old_batch_id, new_value,"
    " batch_id FROM revisions ORDER BY 1, 2, 3, 9, 4",
    "flags": "SELECT sensor_id, start_ts, end_ts, kind, energy_kwh, detail, batch_id FROM flags ORDER BY 1, 2, 4",
    "rejected": "SELECT batch_id, location, line, field, value, reason FROM rejected_records ORDER BY 1, 3, 2",
}


def _tables(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(sa.text(sql))] for name, sql in TABLES.items()}


def _stamp(k: int) -> str:
    return (pd.Timestamp("2026-01-10T00:00:00Z") + pd.Timedelta(minutes=15 * k)).isoformat()


def _base_rows() -> list[str]:
    """Stored before the messy file: m2's registers for steps 0..39 (so m2 is not fresh)."""
    return [f"m2,{_stamp(k)},1-0:1.8.0,{500 + 0.5 * k},kWh" for k in range(40)]


def _messy_rows() -> list[str]:
    """Registers of m1 (fresh) with a reset, a gap, repeats and a revision; m2 continuing and
    revising the stored ones; interval energies of m3; bad rows; all shuffled."""
    rows = []
    value = 100.0
    for k in range(60):
        if k == 30:
            value = 2.0  # reset
        if k in (41, 42, 43):
            continue  # gap
        value += 0.25 + 0.01 * (k % 3)
        rows.append(f"m1,{_stamp(k)},1-0:1.8.0,{value:.3f},kWh")
        if k == 12:
            revised_12 = value + 0.1  # still between its neighbours: a revision, not a spike
    rows += rows[5:9]  # the same readings again: duplicates
    rows.append(f"m1,{_stamp(12)},1-0:1.8.0,{revised_12:.3f},kWh")  # a changed value, later in the file
    rows += [f"m2,{_stamp(k)},1-0:1.8.0,{500 + 0.5 * k + (0.125 if k == 37 else 0)},kWh" for k in range(35, 70)]
    rows += [f"m3,{_stamp(k)},1-0:1.29.0,{0.1 * k:.1f},kWh" for k in range(20)]
    rows += [f"m3,{_stamp(3)},1-0:1.29.0,7.5,kWh", "m9,2026-01-10T00:00:00Z,1-0:1.8.0,1,kWh"]
    rows.append("m1,not a time,1-0:1.8.0,1,kWh")
    random.Random(4).shuffle(rows)
    rows.insert(17, "m1,2026-01-10T00:00:00Z,1-0:1.8.0")  # a short line
    rows.insert(29, "")  # a blank line
    return rows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _one_piece(engine: Engine, path: Path, options: IngestOptions) -> IngestReport:
    records, rejected, source = read_csv(path)
    return ingest(engine, "s1", records, source, options, rejected)


def _summary(report: IngestReport) -> tuple[object, ...]:
    rejected = sorted((r.line or 0, r.where, r.field, r.value, r.reason) for r in report.rejected)
    flags = sorted((f.sensor, f.kind, f.start, f.end, f.detail) for f in report.flags)
    return report.rows_read, report.accepted, report.duplicates, report.revised, rejected, flags


@pytest.mark.parametrize("interpolate", [False, True])
def test_many_chunks_give_the_same_tables_as_one(kind: str, tmp_path: Path, interpolate: bool) -> None:
    base = _write(tmp_path / "base.csv", _base_rows())
    messy = _write(tmp_path / "messy.csv", _messy_rows())
    results = []
    for chunk_rows in (None, 1, 7, 50, 10_000):
        options = IngestOptions(now=NOW, interpolate=interpolate, chunk_rows=chunk_rows or 200_000)
        with scratch_store(kind, tmp_path) as engine:
            demo_sensors(engine)
            _one_piece(engine, base, options)
            if chunk_rows is None:
                report = _one_piece(engine, messy, options)
            else:
                report = ingest_csv(engine, "s1", messy, options=options)
            assert report.balanced
            tables = _tables(engine)
            # (the tables after a re-run may differ in one thing: a key given twice with different
            # values that ends at its stored value is written again by the chunk that has it)
            again = ingest_csv(engine, "s1", messy, options=options)
            results.append((_summary(report), tables, _summary(again)))
    reference = results[0]
    assert reference[0][2] > 0 and reference[0][3] > 0  # duplicates and revisions happened
    assert {f[1] for f in reference[0][5]} >= {"reset", "gap"}
    assert any(r[0] == "register" for r in reference[1]["revisions"])
    assert reference[2][1] == 0  # the re-run adds nothing (the keys given twice are revised again)
    for result in results[1:]:
        assert result == reference


def test_repeated_autumn_hour_split_across_chunks(kind: str, tmp_path: Path) -> None:
    local = pd.date_range("2025-10-26T01:00:00", "2025-10-26T04:00:00", freq="15min", tz="Europe/Berlin")
    walls = [t.strftime("%Y-%m-%dT%H:%M:%S") for t in local]  # the hour 02:00..02:45 twice, in order
    rows = [f"m1,{w},1-0:1.8.0,{10 + 0.5 * k},kWh" for k, w in enumerate(walls)]
    path = _write(tmp_path / "autumn.csv", rows)
    outcomes = []
    for chunk_rows in (None, 3):
        with scratch_store(kind, tmp_path) as engine:
            demo_sensors(engine)
            options = IngestOptions(now=NOW, tz="Europe/Berlin", chunk_rows=chunk_rows or 200_000)
            if chunk_rows is None:
                report = _one_piece(engine, path, options)
            else:
                report = ingest_csv(engine, "s1", path, options=options)
            outcomes.append((_summary(report), _tables(engine)))
    assert outcomes[0][0][1] == len(rows)  # all accepted: the order told the passes apart
    assert outcomes[1] == outcomes[0]


def test_chunks_keep_line_numbers_and_the_checksum(tmp_path: Path) -> None:
    rows = [f"m1,{_stamp(k)},1-0:1.8.0,{k},kWh" for k in range(1000)]
    rows[500] = "m1,short"
    rows[700] = ""
    path = _write(tmp_path / "a.csv", rows)
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for file in (path, gz):
        chunks = CsvChunks(file, chunk_rows=64)
        frames = list(chunks)
        assert len(frames) > 5
        assert max(len(f) for f, _ in frames) <= 3 * 64
        lines = pd.concat([f["line"] for f, _ in frames]).tolist()
        assert lines == [k + 2 for k in range(1000) if k not in (500, 700)]
        assert [(r.line, r.field) for _, bad in frames for r in bad] == [(502, "line")]
        assert chunks.checksum == file_checksum(file)
        assert chunks.bytes_read == file.stat().st_size


def test_quotes_close_on_their_line_and_a_record_never_spans_lines(tmp_path: Path) -> None:
    rows = [f"m1,{_stamp(k)},1-0:1.8.0,{k},kWh" for k in range(300)]
    rows[200] = f'"m1",{_stamp(200)},"1-0:1.8.0","2""00",kWh'  # quoted fields, a doubled quote
    rows[210] = f'm1,{_stamp(210)},"1-0:1.8.0",210,"k,Wh"'  # a quoted comma is part of the field
    rows[250] = f'm1,{_stamp(250)},1-0:1.8.0,250,kWh,"extra\nfield"'  # the quote does not close on its line
    rows[260] = f'm1,{_stamp(260)},1-0:1.8.0,"26"0,kWh'  # text after a closing quote
    rows[270] = f'm1,{_stamp(270)},1-0:1.8.0,2"7"0,kWh'  # quotes inside an unquoted field: characters
    path = _write(tmp_path / "q.csv", rows)
    frames = list(CsvChunks(path, chunk_rows=32))
    records = pd.concat([f for f, _ in frames], ignore_index=True)
    assert records.loc[records["line"] == 202, ["meter_id", "value"]].values.tolist() == [["m1", '2"00']]
    assert records.loc[records["line"] == 212, "unit"].tolist() == ["k,Wh"]
    assert records.loc[records["line"] == 273, "value"].tolist() == ['2"7"0']  # the validator refuses it
    bad = [(r.line, r.field, r.reason.split(":")[0].split(" (")[0]) for _, b in frames for r in b]
    # file lines: header 1, rows[k] on line k + 2 up to the broken record (lines 252 and 253), k + 3 after it
    assert bad == [
        (252, "line", "unbalanced quote"),
        (253, "line", "unbalanced quote"),
        (263, "line", "malformed quoting"),
    ]
    assert records["line"].tolist() == [k + 2 for k in range(301) if k + 2 not in (252, 253, 263)]
