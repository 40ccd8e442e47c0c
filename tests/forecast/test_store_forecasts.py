"""Forecasts stored as beliefs: read back as known at a past instant (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.store.forecasts import (
    ForecastRun,
    forecast_keys,
    issue_times,
    load_forecast,
    load_forecasts,
    store_forecast,
    store_forecasts,
    stored_forecasts,
)
from grid.store.sites import create_site


def _run(start: str, n: int, level: float) -> pd.DataFrame:
    index = pd.date_range(start, periods=n, freq="15min")
    base = level + np.arange(n, dtype=float)
    return pd.DataFrame({0.1: base - 1, 0.5: base, 0.9: base + 1}, index=index)


def test_as_of_returns_the_run_issued_then_not_a_later_one(store: Engine) -> None:
    create_site(store, "s1")
    yesterday_06 = pd.Timestamp("2026-01-14T06:00:00+01:00")
    store_forecast(store, "s1", "site", _run("2026-01-15T00:00Z", 96, 100.0), yesterday_06, "learned_ridge")
    store_forecast(
        store, "s1", "site", _run("2026-01-15T00:00Z", 96, 200.0), "2026-01-14T18:00:00+01:00", "learned_ridge"
    )
    start, end = "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"

    then = load_forecast(store, "s1", "site", start, end, as_of="2026-01-14T06:00:00+01:00")
    assert list(then.columns) == [0.1, 0.5, 0.9]
    assert str(then.index.tz) == "UTC" and len(then) == 96
    np.testing.assert_allclose(then[0.5], 100.0 + np.arange(96))
    assert (then.attrs["issued_at"] == yesterday_06.tz_convert("UTC")).all()

    latest = load_forecast(store, "s1", "site", start, end)
    np.testing.assert_allclose(latest[0.5], 200.0 + np.arange(96))
    before_any = load_forecast(store, "s1", "site", start, end, as_of="2026-01-14T05:59:00+01:00")
    assert before_any.empty or before_any.isna().all().all()
    assert issue_times(store, "s1", "site") == [
        yesterday_06.tz_convert("UTC"),
        pd.Timestamp("2026-01-14T17:00:00Z"),
    ]


def test_per_interval_latest_run_and_restore_replaces(store: Engine) -> None:
    create_site(store, "s1")
    store_forecast(store, "s1", "T1", _run("2026-01-15T00:00Z", 8, 0.0), "2026-01-14T23:00Z", "m", "power_kw")
    # a later run covering only the second half
    store_forecast(store, "s1", "T1", _run("2026-01-15T01:00Z", 4, 50.0), "2026-01-15T00:30Z", "m", "power_kw")
    got = load_forecast(store, "s1", "T1", "2026-01-15T00:00Z", "2026-01-15T03:00Z")
    np.testing.assert_allclose(got[0.5].iloc[:4], [0, 1, 2, 3])
    np.testing.assert_allclose(got[0.5].iloc[4:8], [50, 51, 52, 53])
    assert got.iloc[8:].isna().all().all()  # nothing issued for those intervals
    # storing the same run again replaces it (same issue time and model)
    store_forecast(store, "s1", "T1", _run("2026-01-15T01:00Z", 4, 70.0), "2026-01-15T00:30Z", "m", "power_kw")
    got = load_forecast(store, "s1", "T1", "2026-01-15T01:00Z", "2026-01-15T02:00Z")
    np.testing.assert_allclose(got[0.5], [70, 71, 72, 73])
    # other quantities and targets are separate
    assert load_forecast(store, "s1", "T1", "2026-01-15T00:00Z", "2026-01-15T01:00Z", quantity="heat_kw").empty


def test_two_models_at_one_issue_time_need_a_choice(store: Engine) -> None:
    create_site(store, "s1")
    store_forecast(store, "s1", "site", _run("2026-01-15T00:00Z", 4, 1.0), "2026-01-14T12:00Z", "a")
    store_forecast(store, "s1", "site", _run("2026-01-15T00:00Z", 4, 9.0), "2026-01-14T12:00Z", "b")
    with pytest.raises(InputError, match="pass model="):
        load_forecast(store, "s1", "site", "2026-01-15T00:00Z", "2026-01-15T01:00Z")
    got = load_forecast(store, "s1", "site", "2026-01-15T00:00Z", "2026-01-15T01:00Z", model="b")
    np.testing.assert_allclose(got[0.5], [9, 10, 11, 12])


def test_bad_input(store: Engine) -> None:
    create_site(store, "s1")
    with pytest.raises(InputError, match="unknown site"):
        store_forecast(store, "nope", "site", _run("2026-01-15T00:00Z", 4, 1.0), "2026-01-14T12:00Z", "m")
    with pytest.raises(InputError, match="UTC offset"):
        store_forecast(store, "s1", "site", _run("2026-01-15T00:00Z", 4, 1.0), "2026-01-14T12:00", "m")
    with pytest.raises(InputError, match="quantile levels"):
        store_forecast(
            store, "s1", "site", _run("2026-01-15T00:00Z", 4, 1.0).rename(columns={0.9: 90}), "2026-01-14T12:00Z", "m"
        )


def test_forecast_keys_are_the_stored_pairs_sorted(store: Engine) -> None:
    create_site(store, "s1")
    create_site(store, "s2")
    assert forecast_keys(store, "s1") == []
    for target, quantity in (("site", "power_kw"), ("T1", "power_kw"), ("T1", "heat_kw")):
        for issued in ("2026-01-14T23:00Z", "2026-01-15T00:00Z"):  # two runs: one pair each
            store_forecast(store, "s1", target, _run("2026-01-15T00:00Z", 4, 0.0), issued, "m", quantity)
    store_forecast(store, "s2", "other", _run("2026-01-15T00:00Z", 4, 0.0), "2026-01-14T23:00Z", "m")
    assert forecast_keys(store, "s1") == [("T1", "heat_kw"), ("T1", "power_kw"), ("site", "power_kw")]
    assert forecast_keys(store, "s1") == [(f.target, f.quantity) for f in stored_forecasts(store, "s1")]


def test_many_targets_stored_at_once_and_read_at_once_as_one_by_one(store: Engine) -> None:
    """store_forecasts writes several targets in one transaction (none when one is bad);
    load_forecasts gives for each (target, quantity) exactly what load_forecast gives: values,
    levels, the run of each interval, NaN where no run covers it."""
    create_site(store, "s1")
    issued = "2026-01-14T23:00Z"
    runs = [
        ForecastRun("connection:T1", _run("2026-01-15T00:00Z", 8, 0.0), "m"),
        ForecastRun("pv:A", _run("2026-01-15T00:00Z", 8, 5.0)[[0.5]], "pvlib", "kw_per_kwp"),
        ForecastRun("heat:H", _run("2026-01-15T01:00Z", 4, 9.0).where(lambda f: f > 10.5), "heat", "heat_kw"),
    ]
    assert store_forecasts(store, "s1", runs, issued) == 24 + 8 + 6  # NaN values are not stored
    # a later run of T1 over the second hour only; a run of another model at another time
    store_forecast(store, "s1", "connection:T1", _run("2026-01-15T01:00Z", 4, 50.0), "2026-01-15T00:30Z", "m")
    store_forecast(store, "s1", "pv:A", _run("2026-01-15T00:00Z", 4, 7.0), "2026-01-15T00:45Z", "other", "kw_per_kwp")
    bad = _run("2026-01-15T00:00Z", 4, 1.0).rename(columns={0.9: 90})
    with pytest.raises(InputError, match="quantile levels"):
        store_forecasts(
            store,
            "s1",
            [ForecastRun("site", _run("2026-01-15T00:00Z", 4, 1.0), "m"), ForecastRun("x", bad, "m")],
            issued,
        )
    assert forecast_keys(store, "s1") == [("connection:T1", "power_kw"), ("heat:H", "heat_kw"), ("pv:A", "kw_per_kwp")]
    keys = [("connection:T1", "power_kw"), ("pv:A", "kw_per_kwp"), ("heat:H", "heat_kw"), ("none", "power_kw")]
    for as_of in (None, "2026-01-15T00:40Z", "2026-01-14T23:30Z", "2026-01-14T22:00Z"):
        both = load_forecasts(store, "s1", keys, "2026-01-14T23:45Z", "2026-01-15T02:30Z", as_of)
        assert list(both) == keys
        for target, quantity in keys:
            one = load_forecast(store, "s1", target, "2026-01-14T23:45Z", "2026-01-15T02:30Z", as_of, quantity)
            pd.testing.assert_frame_equal(both[target, quantity], one, check_exact=True)
            for meta in ("issued_at", "model"):
                pd.testing.assert_series_equal(both[target, quantity].attrs[meta], one.attrs[meta], check_exact=True)
    latest = load_forecasts(store, "s1", keys, "2026-01-15T00:00Z", "2026-01-15T02:00Z")
    np.testing.assert_allclose(latest["connection:T1", "power_kw"][0.5], [0, 1, 2, 3, 50, 51, 52, 53])
    assert latest["pv:A", "kw_per_kwp"].attrs["model"].tolist()[:5] == ["other"] * 4 + ["pvlib"]
    assert latest["none", "power_kw"].empty
