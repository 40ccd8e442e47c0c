"""The demo meter history (grid.demo_history): a week around the DST change of 2026-10-25 for a
generated 10-household site, its faults, and its ingestion into scratch stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid import demo, demo_history
from grid.demo_history import Fault, HistorySummary, ingest_history, write_history
from grid.domain import Site, load_site
from grid.ingest.report import IngestReport
from grid.store.catalog import EXPORT_REGISTER, IMPORT_REGISTER
from grid.store.readback import load_series
from grid.store.testing import scratch_store

START = "2026-10-22T00:00:00+02:00"
END = "2026-10-29T00:00:00+01:00"
DST_DAY = "2026-10-25"
QUARTER_HOURS_ON_DST_DAY = 100  # 25 h in Europe/Berlin
STEP = pd.Timedelta(minutes=15)


@pytest.fixture(scope="module")
def site_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.generate_demo(tmp_path_factory.mktemp("site"), n_households=10)


@pytest.fixture(scope="module")
def site(site_path: Path) -> Site:
    return load_site(site_path)


@pytest.fixture(scope="module")
def history(site_path: Path, tmp_path_factory: pytest.TempPathFactory) -> HistorySummary:
    return write_history(site_path, tmp_path_factory.mktemp("hist") / "history.csv.gz", START, END)


@pytest.fixture(scope="module")
def rows(history: HistorySummary) -> pd.DataFrame:
    """The file's rows in file order, with `ts` (UTC) and `register` (meter_id/obis)."""
    frame = pd.read_csv(history.path, dtype={"value": float})
    frame["ts"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["register"] = frame["meter_id"] + "/" + frame["obis"]
    return frame


def _faults(history: HistorySummary, kind: str) -> list[Fault]:
    return [f for f in history.faults if f.kind == kind]


def _reading(rows: pd.DataFrame, fault_meter: str, obis: str, stamp: pd.Timestamp | str) -> float:
    hit = rows[(rows["meter_id"] == fault_meter) & (rows["obis"] == obis) & (rows["ts"] == pd.Timestamp(stamp))]
    assert len(hit) >= 1, (fault_meter, obis, stamp)
    return float(hit["value"].iloc[0])


def _sensor(site: Site, meter_id: str, obis: str) -> str:
    """The store's sensor name of a household register (see grid.store.sites.site_sensor_specs)."""
    household = next(h for h in site.households if h.meter_id == meter_id)
    return f"{household.id}.{'import' if obis == IMPORT_REGISTER else 'export'}"


# --- the file -------------------------------------------------------------------------------------


def test_same_arguments_same_bytes(site_path: Path, history: HistorySummary, tmp_path: Path) -> None:
    again = write_history(site_path, tmp_path / "again.csv.gz", START, END)
    assert Path(again.path).read_bytes() == Path(history.path).read_bytes()
    assert again.sha256 == history.sha256
    other_seed = write_history(site_path, tmp_path / "other.csv.gz", START, END, seed=1)
    assert other_seed.sha256 != history.sha256


def test_registers_match_the_sensors_the_store_creates(site: Site, rows: pd.DataFrame) -> None:
    expected = {f"{h.meter_id}/{IMPORT_REGISTER}" for h in site.households}
    expected |= {f"{h.meter_id}/{EXPORT_REGISTER}" for h in site.households}
    expected |= {f"{p.id}/{EXPORT_REGISTER}" for p in site.pv_arrays}
    assert site.pv_arrays, "the small site should have PV"
    assert set(rows["register"]) == expected
    assert (rows["unit"] == "kWh").all()
    assert rows["timestamp"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\+0[12]:00$").all()


def test_window_and_dst_day_has_100_quarter_hours(rows: pd.DataFrame) -> None:
    assert rows["ts"].min() == pd.Timestamp(START)
    assert rows["ts"].max() == pd.Timestamp(END)
    local_day = rows["ts"].dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%d")
    on_dst_day = rows[local_day == DST_DAY].groupby("register")["ts"].nunique()
    assert len(on_dst_day) == rows["register"].nunique()
    assert (on_dst_day == QUARTER_HOURS_ON_DST_DAY).all()
    unique = rows[(local_day == DST_DAY) & ~rows.duplicated(["register", "ts"])]
    offsets = unique["timestamp"].str[-6:].value_counts()
    assert offsets["+02:00"] == 12 * rows["register"].nunique()  # 00:00-02:45 CEST
    assert offsets["+01:00"] == 88 * rows["register"].nunique()  # 02:00-23:45 CET


def test_registers_only_rise_except_at_the_reset(history: HistorySummary, rows: pd.DataFrame) -> None:
    ordered = rows.drop_duplicates(["register", "ts"]).sort_values(["register", "ts"])
    falls = ordered.groupby("register")["value"].diff() < 0
    (reset,) = _faults(history, "reset")
    fell = ordered[falls]
    assert list(fell["register"]) == [f"{reset.meter_id}/{reset.obis}"]
    assert fell["ts"].iloc[0] == pd.Timestamp(reset.end)


def test_household_export_is_flat_and_pv_generates(site: Site, rows: pd.DataFrame) -> None:
    household_export = rows[rows["meter_id"].str.startswith("MTR-") & (rows["obis"] == EXPORT_REGISTER)]
    assert (household_export["value"] == 0.0).all()
    pv = rows[rows["meter_id"].isin([p.id for p in site.pv_arrays])]
    advance = pv.groupby("meter_id")["value"].agg(lambda v: v.max() - v.min())
    assert (advance > 0).all()


def test_duplicates(history: HistorySummary, rows: pd.DataFrame) -> None:
    singles = _faults(history, "duplicate")
    (block,) = _faults(history, "duplicate_block")
    assert len(singles) == demo_history.DUPLICATE_SINGLES
    assert history.duplicate_rows == len(singles) + block.rows
    repeated = rows[rows.duplicated(["register", "ts"], keep=False)]
    # every repeat is an exact copy of its line
    assert repeated.duplicated(["meter_id", "timestamp", "obis", "value", "unit"], keep=False).all()
    assert len(rows) - len(rows.drop_duplicates(["register", "ts"])) == history.duplicate_rows
    # single duplicates follow their original directly
    for fault in singles:
        at = rows.index[
            (rows["meter_id"] == fault.meter_id)
            & (rows["obis"] == fault.obis)
            & (rows["ts"] == pd.Timestamp(fault.start))
        ]
        assert len(at) == 2 and at[1] - at[0] == 1


def test_out_of_order_and_late_rows(history: HistorySummary, rows: pd.DataFrame) -> None:
    """A row is out of order when a later reading of its register came before it in the file."""
    seen_max = rows.groupby("register")["ts"].cummax().groupby(rows["register"]).shift()
    behind = rows[rows["ts"] < seen_max]
    late = _faults(history, "late")
    moved = _faults(history, "out_of_order")
    (block,) = _faults(history, "duplicate_block")
    assert len(moved) == demo_history.OUT_OF_ORDER_ROWS
    assert len(late) == demo_history.LATE_METERS
    late_rows = sum(f.rows for f in late)
    assert len(behind) == len(moved) + late_rows + block.rows
    for fault in moved:
        key = (
            (rows["meter_id"] == fault.meter_id)
            & (rows["obis"] == fault.obis)
            & (rows["ts"] == pd.Timestamp(fault.start))
        )
        assert key[behind.index].any(), fault
    # late rows are the last lines of the file, each late block complete
    tail = rows.iloc[-late_rows:]
    for fault in late:
        mine = tail[(tail["meter_id"] == fault.meter_id) & (tail["obis"] == fault.obis)]
        assert len(mine) == fault.rows == demo_history.LATE_STEPS
        assert mine["ts"].min() == pd.Timestamp(fault.start) and mine["ts"].max() == pd.Timestamp(fault.end)


def test_reset_and_gap(history: HistorySummary, rows: pd.DataFrame) -> None:
    (reset,) = _faults(history, "reset")
    before = _reading(rows, reset.meter_id, reset.obis, reset.start)
    after = _reading(rows, reset.meter_id, reset.obis, reset.end)
    assert pd.Timestamp(reset.end) - pd.Timestamp(reset.start) == STEP
    assert before > 1000.0 and 0.0 <= after < 1.0  # restarted from 0 inside the interval
    gaps = _faults(history, "gap")
    assert len(gaps) == 2 and {g.meter_id for g in gaps} == {gaps[0].meter_id}
    assert gaps[0].meter_id not in {reset.meter_id, *(f.meter_id for f in _faults(history, "late"))}
    for gap in gaps:
        mine = rows[(rows["meter_id"] == gap.meter_id) & (rows["obis"] == gap.obis)]
        inside = mine["ts"].between(pd.Timestamp(gap.start), pd.Timestamp(gap.end))
        assert not inside.any()
        assert (mine["ts"] == pd.Timestamp(gap.start) - STEP).any()
        assert (mine["ts"] == pd.Timestamp(gap.end) + STEP).any()
        assert gap.rows == demo_history.GAP_STEPS


def test_default_window_starts_before_the_last_october_dst_change() -> None:
    plan_2026 = pd.Timestamp("2026-01-14T00:00:00+01:00").tz_convert("UTC")
    assert demo_history.default_start(plan_2026) == pd.Timestamp("2025-10-20T00:00:00+02:00")
    plan_2027 = pd.Timestamp("2027-01-14T00:00:00+01:00").tz_convert("UTC")
    assert demo_history.default_start(plan_2027) == pd.Timestamp("2026-10-19T00:00:00+02:00")
    assert plan_2027 - demo_history.default_start(plan_2027) >= pd.Timedelta(weeks=8)


def test_ensure_history_reuses_a_matching_file(site_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cached.csv.gz"
    first = demo_history.ensure_history(site_path, out, START, END)
    mtime = out.stat().st_mtime_ns
    again = demo_history.ensure_history(site_path, out, START, END)
    assert again.sha256 == first.sha256 and out.stat().st_mtime_ns == mtime
    out.write_bytes(b"corrupt")
    repaired = demo_history.ensure_history(site_path, out, START, END)
    assert repaired.sha256 == first.sha256


# --- ingestion ------------------------------------------------------------------------------------


def _check_report(report: IngestReport, history: HistorySummary, site: Site) -> None:
    assert report.rows_read == history.rows
    assert report.balanced
    assert report.accepted + report.duplicates + report.revised + len(report.rejected) == report.rows_read
    assert report.rejected == [] and report.revised == 0
    assert report.duplicates == history.duplicate_rows
    assert report.accepted == history.readings
    (reset,) = _faults(history, "reset")
    resets = [f for f in report.flags if f.kind == "reset"]
    assert [(f.sensor, pd.Timestamp(f.start), pd.Timestamp(f.end)) for f in resets] == [
        (_sensor(site, reset.meter_id, reset.obis), pd.Timestamp(reset.start), pd.Timestamp(reset.end))
    ]
    gaps = {f.sensor: f for f in report.flags if f.kind == "gap"}
    expected = _faults(history, "gap")
    assert set(gaps) == {_sensor(site, g.meter_id, g.obis) for g in expected}
    for g in expected:
        flag = gaps[_sensor(site, g.meter_id, g.obis)]
        assert pd.Timestamp(flag.start) == pd.Timestamp(g.start) - STEP
        assert pd.Timestamp(flag.end) == pd.Timestamp(g.end) + STEP
    assert {f.kind for f in report.flags} == {"reset", "gap"}


@pytest.fixture(scope="module")
def sqlite_ingested(
    site_path: Path, history: HistorySummary, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, IngestReport]]:
    with scratch_store("sqlite", tmp_path_factory.mktemp("store")) as engine:
        yield engine, ingest_history(site_path, Path(history.path), engine=engine)


def test_ingest_counts_every_row_and_flags_reset_and_gap(
    sqlite_ingested: tuple[Engine, IngestReport], history: HistorySummary, site: Site
) -> None:
    _check_report(sqlite_ingested[1], history, site)


def test_ingest_again_is_all_duplicates(
    sqlite_ingested: tuple[Engine, IngestReport], site_path: Path, history: HistorySummary
) -> None:
    engine, _ = sqlite_ingested
    again = ingest_history(site_path, Path(history.path), engine=engine)
    assert again.balanced and again.accepted == 0 and again.revised == 0 and not again.rejected
    assert again.duplicates == history.rows


def test_interval_energy_adds_up_to_the_register_advance_per_segment(
    sqlite_ingested: tuple[Engine, IngestReport], history: HistorySummary, rows: pd.DataFrame, site: Site
) -> None:
    engine = sqlite_ingested[0]
    (reset,) = _faults(history, "reset")
    energy = load_series(
        engine, site.id, START, END, sensor=_sensor(site, reset.meter_id, reset.obis), quantity="energy"
    )
    assert len(energy) == (pd.Timestamp(END) - pd.Timestamp(START)) / STEP
    at = pd.Timestamp(reset.start)
    assert np.isnan(energy[at]) and energy.isna().sum() == 1  # the interval with the reset
    read = lambda ts: _reading(rows, reset.meter_id, reset.obis, ts)  # noqa: E731
    assert energy[:at].iloc[:-1].sum() == pytest.approx(read(at) - read(START), abs=1e-6)
    assert energy[pd.Timestamp(reset.end) :].sum() == pytest.approx(read(END) - read(reset.end), abs=1e-6)

    gap = next(g for g in _faults(history, "gap") if g.obis == IMPORT_REGISTER)
    energy = load_series(engine, site.id, START, END, sensor=_sensor(site, gap.meter_id, gap.obis), quantity="energy")
    before, after = pd.Timestamp(gap.start) - STEP, pd.Timestamp(gap.end) + STEP
    missing = energy[energy.isna()]
    assert missing.index[0] == before and missing.index[-1] == pd.Timestamp(gap.end)
    assert len(missing) == demo_history.GAP_STEPS + 1
    read = lambda ts: _reading(rows, gap.meter_id, gap.obis, ts)  # noqa: E731
    assert energy.sum() == pytest.approx(read(END) - read(START) - (read(after) - read(before)), abs=1e-6)

    pv = site.pv_arrays[0]
    energy = load_series(engine, site.id, START, END, sensor=f"{pv.id}.export", quantity="energy")
    assert energy.notna().all()
    assert energy.sum() == pytest.approx(
        _reading(rows, pv.id, EXPORT_REGISTER, END) - _reading(rows, pv.id, EXPORT_REGISTER, START), abs=1e-6
    )


@pytest.mark.postgres
def test_ingest_into_postgresql(site_path: Path, history: HistorySummary, site: Site, tmp_path: Path) -> None:
    with scratch_store("postgres", tmp_path) as engine:
        report = ingest_history(site_path, Path(history.path), engine=engine)
    _check_report(report, history, site)
