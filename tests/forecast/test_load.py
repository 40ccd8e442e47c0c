"""Load models: seasonal naive, standard-profile cold start, learned model; calendar and DST."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from grid.errors import InputError
from grid.forecast.calendar import calendar_frame, day_type_of_dates, is_bridge_date
from grid.forecast.load import LearnedLoad, SeasonalNaive, StandardProfile, forecast_load
from grid.forecast.profiles import standard_profile_kw
from grid.timeindex import local_day_index

from .conftest import quarter_hours, weekly_pattern_kw


def test_pure_weekly_pattern_naive_exact_learned_close() -> None:
    # 2026-01-12 .. 2026-03-16: no Hesse holiday and no DST change inside
    index = quarter_hours("2026-01-12T00:00:00+01:00", 63)
    series = weekly_pattern_kw(index)
    history, target = series.iloc[: -2 * 96], pd.DatetimeIndex(index[-2 * 96 :])
    naive = SeasonalNaive().fit(history).predict(target)
    np.testing.assert_allclose(naive.median, series[target], rtol=0, atol=1e-12)
    learned = LearnedLoad("ridge", horizon_h=48).fit(history).predict(target)
    error = np.abs(learned.median - series[target])
    assert error.mean() < 0.01 * series.mean()
    assert error.max() < 0.05 * series.mean()


def test_corpus_christi_is_treated_like_a_sunday() -> None:
    june_4 = np.array(["2026-06-04"], dtype="datetime64[D]")
    assert day_type_of_dates(june_4)[0] == 6
    assert is_bridge_date(np.array(["2026-06-05"], dtype="datetime64[D]"))[0]  # the Friday after
    # history from Easter Monday on contains four holidays that behave like Sundays
    index = quarter_hours("2026-04-06T00:00:00+02:00", 59)
    series = weekly_pattern_kw(index, holidays_as_sunday=True)
    assert index[-1] < pd.Timestamp("2026-06-04T00:00:00+02:00")
    target = local_day_index(dt.date(2026, 6, 4))
    sunday = weekly_pattern_kw(local_day_index(dt.date(2026, 6, 7)))
    thursday = weekly_pattern_kw(local_day_index(dt.date(2026, 6, 11)))
    learned = forecast_load(series, target, horizon_h=48)
    assert learned.model == "learned_ridge"
    to_sunday = np.abs(learned.median.to_numpy() - sunday.to_numpy()).mean()
    to_thursday = np.abs(learned.median.to_numpy() - thursday.to_numpy()).mean()
    assert to_sunday < 0.05 * sunday.mean() < to_thursday
    # the standard profile (demandlib) does the same
    profile = standard_profile_kw(target, "H25", 3500).to_numpy()
    profile_sunday = standard_profile_kw(local_day_index(dt.date(2026, 6, 7)), "H25", 3500).to_numpy()
    profile_thursday = standard_profile_kw(local_day_index(dt.date(2026, 6, 11)), "H25", 3500).to_numpy()
    assert np.abs(profile - profile_sunday).mean() < 0.2 * np.abs(profile - profile_thursday).mean()


@pytest.mark.parametrize(("day", "steps"), [(dt.date(2026, 3, 29), 92), (dt.date(2026, 10, 25), 100)])
def test_dst_days_and_utc_continuity(day: dt.date, steps: int) -> None:
    local_day = local_day_index(day)
    assert len(local_day) == steps
    assert len(calendar_frame(local_day)) == steps
    origin = local_day[0] - pd.Timedelta(hours=12)
    index = quarter_hours("2026-01-05T00:00:00+01:00", (origin - pd.Timestamp("2026-01-05T00:00:00+01:00")).days)
    index = pd.date_range(index[0], origin, freq="15min", inclusive="left")
    history = weekly_pattern_kw(index)
    target = pd.date_range(origin, periods=48 * 4, freq="15min")
    for forecast in (
        forecast_load(history, target, horizon_h=48),
        SeasonalNaive().fit(history).predict(target),
    ):
        got = forecast.quantiles.index
        assert len(got) == 192 and str(got.tz) == "UTC"
        assert (np.diff(got.asi8) == np.diff(target.asi8)[0]).all()
        assert np.isfinite(forecast.quantiles.to_numpy()).all()
    # the local day of the change is covered with exactly its 92 or 100 quarter-hours
    assert target.isin(local_day).sum() == steps


def test_cold_start_profile_scaled_to_the_meter_energy() -> None:
    index = quarter_hours("2026-02-02T00:00:00+01:00", 3)
    history = 0.7 * standard_profile_kw(index, "H25", 3500)  # behaves like a 2450 kWh/a home
    target = pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    forecast = forecast_load(history, target, profile="H25")
    assert forecast.model == "standard_profile"
    assert forecast.notes[0].startswith("cold start: 3.0 days")
    np.testing.assert_allclose(forecast.median, standard_profile_kw(target, "H25", 2450), rtol=1e-9)
    # with the annual energy known, that scale wins
    given = forecast_load(history, target, profile="H25", annual_kwh=4000)
    np.testing.assert_allclose(given.median, standard_profile_kw(target, "H25", 4000), rtol=1e-9)
    assert (given.quantiles.diff(axis=1).iloc[:, 1:] >= 0).all().all()


def test_no_history_and_no_energy_is_an_error() -> None:
    target = quarter_hours("2026-02-02T00:00:00+01:00", 1)
    with pytest.raises(InputError, match="annual_kwh"):
        forecast_load(pd.Series(dtype=float), target)
    forecast = forecast_load(pd.Series(dtype=float), target, annual_kwh=3000)
    assert any("default profile scatter" in n for n in forecast.notes)


def test_forecast_must_start_after_history_and_stay_within_horizon() -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 21)
    series = weekly_pattern_kw(index)
    model = LearnedLoad(horizon_h=24).fit(series)
    with pytest.raises(InputError, match="must start after the history"):
        model.predict(pd.DatetimeIndex(index[-10:]))
    with pytest.raises(InputError, match="more than 24 h"):
        model.predict(pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=200, freq="15min"))


def test_gaps_in_history_are_skipped_not_filled() -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 35)
    series = weekly_pattern_kw(index)
    holed = series.copy()
    holed.iloc[500:900] = np.nan
    target = pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    forecast = forecast_load(holed, target)
    assert np.isfinite(forecast.quantiles.to_numpy()).all()
    assert np.abs(forecast.median.to_numpy() - weekly_pattern_kw(target).to_numpy()).mean() < 0.02


def test_standard_profile_band_from_short_history() -> None:
    index = quarter_hours("2026-02-02T00:00:00+01:00", 5)
    rng = np.random.default_rng(3)
    history = standard_profile_kw(index, "H25", 3500) * np.exp(0.2 * rng.standard_normal(len(index)))
    model = StandardProfile("H25").fit(history)
    forecast = model.predict(pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min"))
    q = forecast.quantiles.to_numpy()
    assert (q[:, 0] < q[:, 1]).all() and (q[:, 1] < q[:, 2]).all()


def test_weighted_ridge_is_sklearns_ridge() -> None:
    """The closed-form ridge of the learned model gives sklearn's estimate (weights, intercept)."""
    from sklearn.linear_model import Ridge

    from grid.forecast.load import WeightedRidge

    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 12))
    x[:, :4] = (x[:, :4] > 0.5).astype(float)
    y = x @ rng.normal(size=12) + 3.0 + rng.normal(size=500)
    w = rng.uniform(0.1, 1.0, 500)
    ours = WeightedRidge(alpha=2.0).fit(x, y, w)
    theirs = Ridge(alpha=2.0).fit(x, y, sample_weight=w)
    assert ours.coef_ is not None
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-10)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), atol=1e-10)
