"""Reading back series and site aggregates (UTC index, units in the name, NaN for gaps)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from grid.store.readback import load_series, site_aggregates

NOW = pd.Timestamp("2026-06-01T00:00:00Z")


def _ingest(store: Engine, rows: list[tuple[str, str, str, float, str]]) -> None:
    from grid.ingest.options import IngestOptions

    records = records_frame(
        [
            {"line": i + 2, "meter_id": m, "obis": o, "timestamp": t, "value": v, "unit": u}
            for i, (m, o, t, v, u) in enumerate(rows)
        ]
    )
    report = ingest(store, "s1", records, Source("test", "t.csv"), IngestOptions(now=NOW))
    assert report.rejected == []


def _stamps(n: int, start: str = "2026-01-15T00:00:00+00:00") -> list[str]:
    return [t.isoformat() for t in pd.date_range(start, periods=n, freq="15min")]


def test_register_series_as_power_and_energy(store: Engine, sensors: dict[str, int]) -> None:
    register = 100.0 + np.array([0, 0.5, 1.5, 2.0, 2.0])  # kWh up to each stamp
    _ingest(store, [("m1", "1-0:1.8.0", t, r, "kWh") for t, r in zip(_stamps(5), register, strict=True)])
    start, end = "2026-01-15T00:00:00Z", "2026-01-15T01:15:00Z"
    energy = load_series(store, "s1", start, end, sensor="m1.import", quantity="energy")
    power = load_series(store, "s1", start, end, sensor="m1/1-0:1.8.0")
    assert energy.name == "energy_kwh" and power.name == "power_kw"
    assert str(energy.index.tz) == "UTC" and len(energy) == 5
    # interval [t_k, t_k+1) stamped t_k gets R(t_k+1) - R(t_k); the last stamp has no successor yet
    np.testing.assert_allclose(energy.iloc[:4], [0.5, 1.0, 0.5, 0.0])
    assert np.isnan(energy.iloc[4])
    np.testing.assert_allclose(power.iloc[:4], [2.0, 4.0, 2.0, 0.0])


def test_kind_aggregate_is_signed_and_nan_when_incomplete(store: Engine, sensors: dict[str, int]) -> None:
    stamps = _stamps(3)
    _ingest(store, [("m1", "1-0:1.8.0", t, r, "kWh") for t, r in zip(stamps, [10, 11, 12], strict=True)])
    _ingest(
        store,
        [("m2", "1-0:1.8.0", t, r, "kWh") for t, r in zip(stamps[:2], [5, 5.25], strict=True)],
    )
    _ingest(
        store,
        [("pv1", "1-0:2.8.0", t, r, "kWh") for t, r in zip(stamps, [0, 0.75, 1.5], strict=True)],
    )
    start, end = "2026-01-15T00:00:00Z", "2026-01-15T00:30:00Z"
    pv = load_series(store, "s1", start, end, kind="pv")
    np.testing.assert_allclose(pv, [-3.0, -3.0])  # generation is negative
    frame = site_aggregates(store, "s1", start, end)
    # household_load: m1 4 kW each step; m2 only has [00:00, 00:15); m1.export has nothing at all
    assert frame["household_load_kw"].isna().all()
    np.testing.assert_allclose(frame["pv_kw"], [-3.0, -3.0])
    np.testing.assert_allclose(frame["pv_coverage"], [1.0, 1.0])


def test_hourly_aggregate_needs_all_quarter_hours(store: Engine, sensors: dict[str, int]) -> None:
    # 9 readings -> 8 intervals = two full hours for pv1; mean power over each hour
    register = np.cumsum([0, 1, 1, 1, 1, 2, 2, 2, 2])
    _ingest(
        store,
        [("pv1", "1-0:2.8.0", t, r, "kWh") for t, r in zip(_stamps(9), register, strict=True)],
    )
    hourly = site_aggregates(store, "s1", "2026-01-15T00:00:00Z", "2026-01-15T03:00:00Z", freq="1h", kinds=("pv",))
    np.testing.assert_allclose(hourly["pv_kw"].iloc[:2], [-4.0, -8.0])
    assert np.isnan(hourly["pv_kw"].iloc[2])


def test_series_needs_offsets_and_a_known_sensor(store: Engine, sensors: dict[str, int]) -> None:
    with pytest.raises(InputError, match="UTC offset"):
        load_series(store, "s1", "2026-01-15T00:00", "2026-01-16T00:00Z", sensor="m1.import")
    with pytest.raises(InputError, match="unknown sensor"):
        load_series(store, "s1", "2026-01-15T00:00Z", "2026-01-16T00:00Z", sensor="nope")


def _registers(meters: list[tuple[str, str]], stamps: list[str], rng: np.random.Generator) -> list[tuple]:
    rows = []
    for meter, obis in meters:
        register = 100.0 + np.cumsum(rng.uniform(0.0, 2.0, len(stamps))).round(3)
        rows += [(meter, obis, t, float(r), "kWh") for t, r in zip(stamps, register, strict=True)]
    return rows


@pytest.mark.parametrize("by", [None, "meter_id"])
def test_kept_sums_are_the_query_after_late_revised_and_new_readings(
    store: Engine, sensors: dict[str, int], by: str | None
) -> None:
    """The sums kept between calls (readback._SUMS) are what the whole query gives after each
    kind of change: readings of new intervals, a late reading inside the kept span, a revised
    register (changes two intervals), a register reset (an interval value withdrawn); each batch
    records the span of interval readings it touched."""
    from grid.store.readback import _grouped_query, _SumCache, grouped_power
    from grid.store.schema import batches
    from grid.store.sites import sensor_frame

    rng = np.random.default_rng(7)
    load = [("m1", "1-0:1.8.0"), ("m1", "1-0:2.8.0"), ("m2", "1-0:1.8.0")]
    stamps = _stamps(2 * 96 + 1)
    late = stamps[100]  # m2's reading at 01-16 01:00 arrives later
    _ingest(store, [r for r in _registers(load, stamps, rng) if not (r[0] == "m2" and r[2] == late)])
    chosen = sensor_frame(store, "s1")
    chosen = chosen[chosen["kind"] == "household_load"]
    cache = _SumCache()

    def check(start: str, end: str) -> pd.DataFrame:
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        kept = cache.grouped(store, "s1", chosen, lo, hi, 15, by)
        fresh = _grouped_query(store, chosen, lo, hi, 15, by)
        pd.testing.assert_frame_equal(kept, fresh, check_exact=store.dialect.name == "sqlite")
        return kept

    first = check("2026-01-15T00:00:00Z", "2026-01-17T00:00:00Z")
    assert check("2026-01-15T00:00:00Z", "2026-01-17T00:00:00Z").equals(first)  # nothing new: the same
    with store.connect() as conn:
        span = conn.execute(sa.select(batches.c.readings_from, batches.c.readings_to)).all()[-1]
    assert pd.Timestamp(span[0]) == pd.Timestamp(stamps[0]) and pd.Timestamp(span[1]) == pd.Timestamp(stamps[-2])
    # the late reading (m2's two intervals around it become known), then a revised register
    # and a new day of readings of m1
    m2 = [r for r in _registers(load, stamps, np.random.default_rng(7)) if r[0] == "m2"]
    _ingest(store, [r for r in m2 if r[2] == late])
    revised = next(r for r in _registers(load, stamps, np.random.default_rng(7)) if r[2] == stamps[40])
    _ingest(store, [(revised[0], revised[1], revised[2], revised[3] + 0.5, "kWh")])
    more = _stamps(97, stamps[-1])
    _ingest(store, _registers([("m1", "1-0:1.8.0")], more, rng))
    second = check("2026-01-15T06:00:00Z", "2026-01-18T00:00:00Z")
    assert not second.equals(first.iloc[: len(second)])  # it did change
    # a register that goes back (a reset): the interval energy over it is withdrawn
    _ingest(store, [("m1", "1-0:1.8.0", t, 1.0 + 0.25 * i, "kWh") for i, t in enumerate(more[50:])])
    check("2026-01-15T06:00:00Z", "2026-01-18T00:00:00Z")
    # grouped_power with the site id is served from the module's cache, the same way
    lo, hi = pd.Timestamp("2026-01-15T00:00:00Z"), pd.Timestamp("2026-01-18T00:00:00Z")
    for _ in range(2):
        got = grouped_power(store, chosen, lo, hi, 15, by, site_id="s1")
        want = _grouped_query(store, chosen, lo, hi, 15, by)
        pd.testing.assert_frame_equal(
            got, want if by else want.set_index("ts"), check_exact=store.dialect.name == "sqlite"
        )
