"""Property (hypothesis), issue 12: over generated CSV files with random corruption (stray and
closing quotes, CR / CRLF / LF mixes, bad bytes, NUL, wide and truncated lines, blank lines,
register spikes) read in chunks of random size, `rows_read` equals the file's data lines, every
one of them ends accepted, duplicate, revised or rejected, and each corrupted line is rejected at
its real line number (counted here independently: any of \\r\\n, \\r, \\n ends a line)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest_csv
from grid.store.testing import demo_sensors, scratch_store

T0 = pd.Timestamp("2026-01-15T00:00:00Z")
NOW = pd.Timestamp("2026-06-01T00:00:00Z")
HEADER = b"meter_id,timestamp,obis,value,unit"
#: corruption -> the start of the reason the reader gives (None: not the reader's to reject)
FAULTS: dict[str, str | None] = {
    "clean": None,
    "stray_quote": "unbalanced quote",
    "closing_quote": "unbalanced quote",
    "bad_byte": "line is not valid UTF-8",
    "nul": "line contains a NUL byte",
    "wide": "line has 7 field(s)",
    "truncated": "line has 3 field(s)",
    "spike": None,  # a valid line: rejected (or not) by the spike rule, counted either way
}
EOLS = [b"\n", b"\r\n", b"\r"]


def corrupt(line: bytes, fault: str) -> bytes:
    if fault == "stray_quote":
        return line.replace(b",1-0:", b',"1-0:')
    if fault == "closing_quote":
        return line.replace(b",kWh", b'",kWh')
    if fault == "bad_byte":
        return line.replace(b"kWh", b"k\xe4Wh")
    if fault == "nul":
        return line.replace(b"kWh", b"k\x00Wh")
    if fault == "wide":
        return line + b",x,y"
    if fault == "truncated":
        return line[: line.index(b",1-0:") + 6].rsplit(b",", 1)[0] + b",1-0"
    return line


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, dict[int, str]]:
    """A long CSV file and the line number (header = 1) of each line the reader must reject."""
    n = draw(st.integers(0, 120))
    faults = draw(st.lists(st.sampled_from(sorted(FAULTS)), min_size=n, max_size=n))
    eols = draw(st.lists(st.sampled_from(EOLS), min_size=n + 1, max_size=n + 1))
    blanks = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=3))
    body = [HEADER + eols[0]]
    expect: dict[int, str] = {}
    line = 2
    for k in range(n):
        meter = ("m1", "m2")[k % 2]
        stamp = (T0 + pd.Timedelta(minutes=15 * (k // 2))).isoformat()
        value = 100.0 + 0.5 * (k // 2) + (5000.0 if faults[k] == "spike" else 0.0)
        text = corrupt(f"{meter},{stamp},1-0:1.8.0,{value:.3f},kWh".encode(), faults[k])
        if k in blanks and eols[k + 1] != b"\n":  # a blank line (after \r a lone \n would join it)
            body.append(eols[k + 1])
            line += 1
        body.append(text + (eols[k + 1] if k < n - 1 or draw(st.booleans()) else b""))
        reason = FAULTS[faults[k]]
        if reason is not None:
            expect[line] = reason
        line += 1
    return b"".join(body), expect


def data_lines(data: bytes) -> list[int]:
    """Numbers of the non-blank lines after the header, counted independently of the reader."""
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines and lines[-1] == b"":
        lines.pop()
    return [i + 1 for i, text in enumerate(lines) if i > 0 and text != b""]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=40, deadline=None)
@given(case=csv_files(), chunk_rows=st.integers(1, 64))
def test_every_data_line_is_counted_once_at_its_line(
    kind: str, case: tuple[bytes, dict[int, str]], chunk_rows: int
) -> None:
    data, expect = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.csv"
        path.write_bytes(data)
        with scratch_store(kind, Path(tmp)) as engine:
            demo_sensors(engine)
            report = ingest_csv(engine, "s1", path, options=IngestOptions(now=NOW, chunk_rows=chunk_rows))
    lines = data_lines(data)
    assert report.rows_read == len(lines)
    assert report.accepted + report.duplicates + report.revised + len(report.rejected) == report.rows_read
    got = [r.line for r in report.rejected]
    assert len(got) == len(set(got)), "a line rejected twice"
    assert set(got) <= set(lines), "a rejection names a line that is not a data line"
    by_line = {r.line: r.reason for r in report.rejected}
    for line, reason in expect.items():
        assert line in by_line and by_line[line].startswith(reason), (line, reason, by_line.get(line))
