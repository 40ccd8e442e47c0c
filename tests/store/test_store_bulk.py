"""Bulk writes and reads on SQLite and PostgreSQL: round trip, neighbours, atomicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.store import bulk
from grid.store.engine import write_transaction
from grid.store.schema import batches

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _batch(conn: sa.Connection) -> int:
    result = conn.execute(
        batches.insert().values(
            site_id="s1",
            source_kind="test",
            source="t",
            checksum="",
            started_at=pd.Timestamp(T0, unit="s", tz="UTC"),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _rows(sensor_id: int, n: int, start: int = T0, new: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": sensor_id,
            "ts_s": start + 900 * np.arange(n),
            "value": np.arange(n) * 0.5,
            "quality": 0,
            "is_new": new,
        }
    )


def test_write_fetch_round_trip_and_overwrite(store: Engine, sensors: dict[str, int]) -> None:
    sid = sensors["m3.energy"]
    units = pd.Series({sid: "kWh"})
    with write_transaction(store) as conn:
        batch = _batch(conn)
        bulk.write_values(conn, "readings", _rows(sid, 10), units, "csv", batch, T0, chunk_rows=3)
    bounds = pd.DataFrame({"sensor_id": [sid], "lo_s": [T0 + 900], "hi_s": [T0 + 900 * 3]})
    with store.connect() as conn:
        got = bulk.fetch_existing(conn, "readings", bounds).sort_values("ts_s")
        near = bulk.fetch_neighbours(conn, "readings", bounds)
    assert got["ts_s"].tolist() == [T0 + 900, T0 + 1800, T0 + 2700]
    assert got["value"].tolist() == [0.5, 1.0, 1.5]
    assert set(got["quality"]) == {0} and set(got["batch_id"]) == {batch}
    assert sorted(near["ts_s"].tolist()) == [T0, T0 + 900 * 4]

    changed = _rows(sid, 2, start=T0 + 900, new=False).assign(value=[9.0, 8.0], quality=2)
    with write_transaction(store) as conn:
        batch2 = _batch(conn)
        bulk.write_values(conn, "readings", changed, units, "api", batch2, T0)
    with store.connect() as conn:
        got = bulk.fetch_existing(conn, "readings", bounds).sort_values("ts_s")
        row = conn.execute(sa.text("SELECT unit, quality, source FROM readings WHERE value = 9.0")).one()
    assert got["value"].tolist() == [9.0, 8.0, 1.5]
    assert tuple(row) == ("kWh", "revised", "api")


def test_a_failed_transaction_leaves_nothing(store: Engine, sensors: dict[str, int]) -> None:
    sid = sensors["m3.energy"]
    with pytest.raises(RuntimeError), write_transaction(store) as conn:
        batch = _batch(conn)
        bulk.write_values(
            conn,
            "readings",
            _rows(sid, 50),
            pd.Series({sid: "kWh"}),
            "csv",
            batch,
            T0,
            chunk_rows=7,
        )
        raise RuntimeError("crash in the middle of a batch")
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM readings")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM batches")).scalar() == 0
