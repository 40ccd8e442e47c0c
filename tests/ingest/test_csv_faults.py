"""Hostile CSV files (issue 12), on SQLite and PostgreSQL: every data line of the file ends
accepted, duplicate, revised or rejected, each fault is rejected alone at its real line, and
nothing raises but a clear InputError for a file that cannot be read at all (over the limits)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.ingest.csvfile import MAX_COLUMNS, MAX_LINE_BYTES, MAX_NAME_CHARS
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest_csv
from grid.ingest.report import IngestReport

NOW = pd.Timestamp("2026-06-01T00:00:00Z")
T0 = pd.Timestamp("2026-01-15T00:00:00Z")
HEADER = b"meter_id,timestamp,obis,value,unit"


def rows(n: int, meter: str = "m1", start_kwh: float = 100.0) -> list[bytes]:
    """n register readings a quarter hour apart, +0.5 kWh each (2 kW: within every limit)."""
    return [
        f"{meter},{(T0 + pd.Timedelta(minutes=15 * k)).isoformat()},1-0:1.8.0,{start_kwh + 0.5 * k:.3f},kWh".encode()
        for k in range(n)
    ]


def run(store: Engine, path: Path, chunk_rows: int = 200_000, name: str | None = None) -> IngestReport:
    report = ingest_csv(store, "s1", path, options=IngestOptions(now=NOW, chunk_rows=chunk_rows), name=name)
    assert report.balanced
    return report


def write(path: Path, lines: list[bytes], eol: bytes = b"\n") -> Path:
    path.write_bytes(eol.join([HEADER, *lines]) + eol)
    return path


def rejected(report: IngestReport) -> list[tuple[int | None, str]]:
    return [(r.line, r.reason.split(":")[0].split(" (")[0]) for r in report.rejected]


def test_a_stray_quote_rejects_its_line_alone(store: Engine, sensors: dict[str, int], tmp_path: Path) -> None:
    lines = rows(100)
    lines[10] = lines[10].replace(b",1-0:1.8.0,", b',1-0:1.8.0,"')  # file line 12: header is line 1
    report = run(store, write(tmp_path / "stray.csv", lines))
    # before: rows_read 11, accepted 10, rejected 1 (89 lines counted nowhere)
    assert (report.rows_read, report.accepted) == (100, 99)
    assert rejected(report) == [(12, "unbalanced quote")]
    lines[60] = lines[60].replace(b",kWh", b'",kWh')  # a closing quote 50 lines later (line 62)
    report = run(store, write(tmp_path / "closing.csv", lines))
    # before: lines 12..62 folded into one value; now two lines rejected, 98 duplicates of the above
    assert (report.rows_read, report.duplicates) == (100, 98)
    assert rejected(report) == [(12, "unbalanced quote"), (62, "unbalanced quote")]


def test_more_than_128_kib_after_a_stray_quote(store: Engine, sensors: dict[str, int], tmp_path: Path) -> None:
    lines = rows(3000)  # ~190 KB after line 12: the csv module's field limit is 128 KiB
    lines[10] = lines[10].replace(b",1-0:1.8.0,", b',1-0:1.8.0,"')
    report = run(store, write(tmp_path / "big.csv", lines), chunk_rows=500)
    assert (report.rows_read, report.accepted) == (3000, 2999)
    assert rejected(report) == [(12, "unbalanced quote")]


@pytest.mark.parametrize("eol", [b"\r", b"\r\n", b"mixed"])
def test_any_line_ending(store: Engine, sensors: dict[str, int], tmp_path: Path, eol: bytes) -> None:
    lines = rows(40)
    lines[20] = b"m1,short"  # file line 22
    if eol == b"mixed":
        body = HEADER + b"\n" + b"".join(x + (b"\r", b"\r\n", b"\n")[k % 3] for k, x in enumerate(lines))
        path = tmp_path / "mixed.csv"
        path.write_bytes(body)
    else:
        path = write(tmp_path / "eol.csv", lines, eol)
    report = run(store, path, chunk_rows=7)  # many blocks: line endings cut across them
    assert (report.rows_read, report.accepted) == (40, 39)
    assert rejected(report) == [(22, "line has 2 field(s), the header has 5")]


def test_a_bad_byte_deep_in_a_file_is_reported_at_its_line(
    store: Engine, sensors: dict[str, int], tmp_path: Path
) -> None:
    lines = rows(12_000)  # 125 days from T0: all before NOW
    lines[9_000] = lines[9_000].replace(b"m1,", b"m\xff,")  # file line 9,002
    lines[11_000] = lines[11_000].replace(b"kWh", b"kW\x00")  # file line 11,002: PostgreSQL refuses NUL
    report = run(store, write(tmp_path / "bad.csv", lines), chunk_rows=4096)
    assert (report.rows_read, report.accepted) == (12_000, 11_998)  # before: InputError at "line 1"
    assert rejected(report) == [(9_002, "line is not valid UTF-8"), (11_002, "line contains a NUL byte")]
    with store.connect() as conn:
        stored = conn.execute(sa.text("SELECT line, raw FROM rejected_records ORDER BY line")).all()
    assert [s[0] for s in stored] == [9_002, 11_002] and "\\x00" in stored[1][1]


def test_an_over_long_line_is_rejected_without_being_held(
    store: Engine, sensors: dict[str, int], tmp_path: Path
) -> None:
    lines = rows(50)
    lines[30] = lines[30] + b"," + b"9" * (MAX_LINE_BYTES + 10)  # file line 32
    path = write(tmp_path / "long.csv.gz", [])
    path.write_bytes(gzip.compress(b"\n".join([HEADER, *lines]) + b"\n"))
    report = run(store, path, chunk_rows=10)
    assert (report.rows_read, report.accepted) == (50, 49)
    assert rejected(report) == [(32, f"line is longer than {MAX_LINE_BYTES} bytes")]


def test_limits_on_columns_and_names(store: Engine, sensors: dict[str, int], tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"  # before: MemoryError
    wide.write_text("timestamp," + ",".join(f"c{i}" for i in range(20_000)) + "\n" + T0.isoformat() + ",1" * 20_000)
    with pytest.raises(InputError, match=f"20001 columns; at most {MAX_COLUMNS}"):
        ingest_csv(store, "s1", wide, fmt="wide", unit="kWh", options=IngestOptions(now=NOW))
    ok = write(tmp_path / "ok.csv", rows(3))
    with pytest.raises(InputError, match=f"300 characters long; at most {MAX_NAME_CHARS}"):
        run(store, ok, name="a" * 296 + ".csv")
    assert run(store, ok, name="b" * 251 + ".csv").source.name == "b" * 251 + ".csv"


def test_a_register_spike_is_rejected_and_leaves_a_flagged_gap(
    store: Engine, sensors: dict[str, int], tmp_path: Path
) -> None:
    lines = rows(20, meter="m2", start_kwh=200.0)
    # reading 10 (file line 12) is +5,000 kWh: 200 + 5 + 5000 = 5205 kWh. Over the quarter hour
    # before it that is 5000.5 kWh * 4 = 20,002 kW, over the one after it -4,999.5 * 4 = -19,998 kW;
    # the limit of m2 is 50 kW, and readings 9 -> 11 (204.5 -> 205.5 kWh) agree: 4 kW.
    lines[10] = lines[10].replace(b"205.000", b"5205.000")
    report = run(store, write(tmp_path / "spike.csv", lines), chunk_rows=5)
    assert (report.rows_read, report.accepted) == (20, 19)
    assert len(report.rejected) == 1
    spike = report.rejected[0]
    assert (spike.line, spike.field, spike.value) == (12, "value", "5205.000")
    assert "implausible" in spike.reason and "20002.0 kW" in spike.reason and "limit is 50 kW" in spike.reason
    # before: an implausible interval and a false reset; now one gap of 2 intervals, 1 kWh
    assert [(f.kind, f.start, f.energy_kwh) for f in report.flags] == [("gap", "2026-01-15T02:15:00+00:00", 1.0)]
    with store.connect() as conn:
        intervals = conn.execute(sa.text("SELECT count(*), sum(value) FROM readings")).one()
    assert intervals[0] == 19 - 1 - 1 and abs(intervals[1] - (9.5 - 1.0)) < 1e-9  # 17 intervals of 0.5 kWh
