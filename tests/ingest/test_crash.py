"""Crash test: a bulk ingest killed with SIGKILL in the middle of its batch leaves none of the
batch behind, and running it again gives the same tables as one clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.csvfile import read_csv
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest, ingest_csv
from grid.store.testing import demo_sensors, engine_location, scratch_store

TABLES = {
    "batches": "SELECT rows_read, accepted, duplicates, revised, rejected FROM batches",
    "readings": "SELECT sensor_id, ts, value, quality FROM readings ORDER BY sensor_id, ts",
    "register_readings": "SELECT sensor_id, ts, value FROM register_readings ORDER BY 1, 2",
    "rejected_records": "SELECT line, field, reason FROM rejected_records ORDER BY line",
    "flags": "SELECT sensor_id, kind FROM flags ORDER BY sensor_id, start_ts",
    "revisions": "SELECT sensor_id, ts FROM revisions",
}
NOW = "2026-06-01T00:00:00+00:00"

CHILD = r"""
import sys
import pandas as pd
from grid.ingest.csvfile import read_csv
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest, ingest_csv
from grid.store.engine import make_engine

url, schema, path, now, mode = sys.argv[1:6]
engine = make_engine(url, schema=schema or None)

def progress(stage, done, total):
    if stage == "write" and 0 < done < total:
        print("MID", done, total, flush=True)
        sys.stdin.readline()  # wait here, inside the open transaction, to be killed

options = IngestOptions(now=pd.Timestamp(now), chunk_rows=500)
if mode == "stream":  # chunk by chunk, the writes on a worker thread (PostgreSQL)
    ingest_csv(engine, "s1", path, options=options, progress=progress)
else:
    records, rejected, source = read_csv(path)
    ingest(engine, "s1", records, source, options, rejected, progress)
print("DONE", flush=True)
"""


def _csv(path: Path) -> Path:
    stamps = pd.date_range("2026-01-01T00:00:00Z", periods=1500, freq="15min")
    lines = ["meter_id,timestamp,obis,value,unit"]
    for meter in ("m1", "m2"):
        lines += [f"{meter},{t.isoformat()},1-0:1.8.0,{100 + 0.25 * k},kWh" for k, t in enumerate(stamps)]
    lines.append("m9,2026-01-01T00:00:00Z,1-0:1.8.0,1,kWh")  # one rejected record in the batch
    path.write_text("\n".join(lines) + "\n")
    return path


def _tables(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(sa.text(sql))] for name, sql in TABLES.items()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[Engine]:
    with scratch_store(kind, tmp_path) as engine:
        demo_sensors(engine)
        yield engine


@pytest.mark.parametrize("mode", ["frame", "stream"])
def test_sigkill_mid_batch_leaves_nothing_and_rerun_is_clean(
    store: Engine, kind: str, tmp_path: Path, mode: str
) -> None:
    path = _csv(tmp_path / "big.csv")
    url, schema = engine_location(store)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, schema or "", str(path), NOW, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("MID"), line
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    after_crash = _tables(store)
    assert all(rows == [] for rows in after_crash.values()), {k: len(v) for k, v in after_crash.items()}

    records, rejected, source = read_csv(path)
    options = IngestOptions(now=pd.Timestamp(NOW))
    if mode == "stream":
        report = ingest_csv(store, "s1", path, options=IngestOptions(now=pd.Timestamp(NOW), chunk_rows=500))
    else:
        report = ingest(store, "s1", records, source, options, rejected)
    assert (report.accepted, len(report.rejected)) == (3000, 1)
    with scratch_store(kind, tmp_path) as ref:
        demo_sensors(ref)
        ingest(ref, "s1", records, source, options, rejected)
        assert _tables(store) == _tables(ref)
