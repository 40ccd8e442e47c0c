"""Property (hypothesis): whatever the order, repetition and batching of cumulative readings with
resets, the stored interval energy of each segment equals its register advance, no gap is left,
and ingesting everything again changes nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from grid.store.schema import SensorKind, flags, readings, sensors
from grid.store.sites import SensorSpec, add_sensors, create_site
from grid.store.testing import scratch_store

T0 = pd.Timestamp("2026-01-15T00:00:00Z")
NOW = pd.Timestamp("2026-06-01T00:00:00Z")
_meters = itertools.count()


@st.composite
def register_batches(draw: st.DrawFn) -> tuple[list[float], list[int], list[list[int]]]:
    """Register values with resets (segments), and batches of reading indices (with repeats)."""
    values: list[float] = []
    segments: list[int] = []
    level = draw(st.floats(10, 1e5))
    for seg in range(draw(st.integers(1, 3))):
        if seg:
            if values[-1] <= 0:
                break
            level = draw(st.floats(0, values[-1] * 0.9))
        for k, inc in enumerate(draw(st.lists(st.floats(0, 5), min_size=1, max_size=12))):
            level += inc if k else 0.0
            values.append(round(level, 3))
            segments.append(seg)
    n = len(values)
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=3)))
    batches = [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True) if a < b]
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=5))
    for i in repeats:
        batches[draw(st.integers(0, len(batches) - 1))].append(i)
    return values, segments, batches


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_store(request.param, tmp_path_factory.mktemp("prop")) as engine:
        create_site(engine, "p1")
        yield engine


def _frame(meter: str, values: list[float], index: list[int]) -> pd.DataFrame:
    return records_frame(
        [
            {
                "line": k + 2,
                "meter_id": meter,
                "obis": "1-0:1.8.0",
                "timestamp": (T0 + pd.Timedelta(minutes=15 * i)).isoformat(),
                "value": values[i],
                "unit": "kWh",
            }
            for k, i in enumerate(index)
        ]
    )


def _snapshot(store: Engine, meter: str) -> list[tuple[object, ...]]:
    query = (
        sa.select(readings.c.ts, readings.c.value, readings.c.quality)
        .join(sensors, sensors.c.id == readings.c.sensor_id)
        .where(sensors.c.meter_id == meter)
        .order_by(readings.c.ts)
    )
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def _flag_kinds(store: Engine, meter: str) -> list[str]:
    query = sa.select(flags.c.kind).join(sensors, sensors.c.id == flags.c.sensor_id).where(sensors.c.meter_id == meter)
    with store.connect() as conn:
        return sorted(conn.execute(query).scalars())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=register_batches())
def test_any_order_and_batching_gives_the_register_advance(
    store: Engine, case: tuple[list[float], list[int], list[list[int]]]
) -> None:
    values, segments, batches = case
    meter = f"p{next(_meters)}"
    add_sensors(store, "p1", [SensorSpec(f"{meter}.import", SensorKind.HOUSEHOLD_LOAD, meter, "1-0:1.8.0")])
    options = IngestOptions(now=NOW)
    for batch in batches:
        report = ingest(store, "p1", _frame(meter, values, batch), Source("test", meter), options)
        assert report.balanced and not report.rejected
    stored = _snapshot(store, meter)
    steps = [int((pd.Timestamp(t) - T0) / pd.Timedelta(minutes=15)) for t, _, _ in stored]
    seg_of = np.asarray(segments, dtype=np.int64)[np.asarray(steps, dtype=np.int64)]
    energy = pd.Series([v for _, v, _ in stored], dtype=float).groupby(seg_of).sum()
    advance = pd.Series(values).groupby(segments).agg(lambda v: v.iloc[-1] - v.iloc[0])
    for seg, expected in advance.items():
        assert abs(energy.get(seg, 0.0) - expected) <= 1e-6 * max(1.0, expected)
    assert _flag_kinds(store, meter) == ["reset"] * (len(set(segments)) - 1)

    again = ingest(store, "p1", _frame(meter, values, list(range(len(values)))), Source("test", meter), options)
    assert (again.accepted, again.revised, again.duplicates) == (0, 0, len(values))
    assert _snapshot(store, meter) == stored
