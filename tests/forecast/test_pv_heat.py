"""PV availability from geometry (pvlib) with calibration; heat demand from heating degrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grid.domain import PVArray, load_site
from grid.errors import InputError
from grid.forecast.heat import HEATING_DEGREE_DAYS_K_D, HeatingDegreeModel
from grid.forecast.pv import CLEAR_SKY_INDEX_KNOTS, MOS_TERMS, PVForecaster
from grid.forecast.weather import Weather, cloud_cover_to_ghi, read_weather_csv

from .conftest import quarter_hours


def _array(aid: str, azimuth: float, tilt: float = 30.0) -> PVArray:
    return PVArray(id=aid, connection="T1", kwp=10.0, tilt_deg=tilt, azimuth_deg=azimuth)


def test_clear_sky_geometry_and_night() -> None:
    index = quarter_hours("2026-06-21T00:00:00+02:00", 1)
    pv = PVForecaster(49.87, 8.65)
    got = pv.forecast(index, [_array("south", 180.0), _array("east", 90.0)])
    south, east = got["south"].quantiles, got["east"].quantiles
    local = index.tz_convert("Europe/Berlin")
    night = (local.hour < 4) | (local.hour >= 22)
    assert (south[night] == 0).all().all()
    morning, noon = (local.hour == 8), (local.hour == 13)
    assert east[0.9][morning].mean() > south[0.9][morning].mean()
    assert south[0.9][noon].mean() > east[0.9][noon].mean()
    assert 0.6 < south[0.9].max() < 1.1  # kW per kWp on a clear June day
    assert (np.diff(south.to_numpy(), axis=1) >= 0).all()
    assert any("presumed" in n for n in got["south"].notes)


def test_calibration_on_measured_pv() -> None:
    index = quarter_hours("2026-05-01T00:00:00+02:00", 7)
    arrays = [_array("a", 180.0)]
    pv = PVForecaster(49.87, 8.65)
    modelled = pv.site_kw(index, arrays)
    rng = np.random.default_rng(2)
    measured = 0.8 * modelled * rng.uniform(0.7, 1.3, len(index))
    pv.calibrate(measured, modelled)
    assert pv.scale == pytest.approx(0.8, rel=0.03)
    target = quarter_hours("2026-05-08T00:00:00+02:00", 1)
    forecast = pv.forecast(target, arrays)["a"].quantiles
    plain = PVForecaster(49.87, 8.65).kw_per_kwp(target, [(30.0, 180.0)])[(30.0, 180.0)]
    np.testing.assert_allclose(forecast[0.5], 0.8 * plain, rtol=0.05, atol=1e-9)
    ratio = forecast[0.9].max() / forecast[0.1].max()
    assert 1.5 < ratio < 2.1  # 1.3 / 0.7 would be 1.86 for the 10-90 % of uniform noise: ~1.24/0.76


def test_supplied_irradiance_drives_the_forecast() -> None:
    index = quarter_hours("2026-06-21T00:00:00+02:00", 1)
    pv = PVForecaster(49.87, 8.65)
    dull = Weather(
        pd.Series(15.0, index=index), pd.Series(100.0, index=index).where(index.hour.isin(range(5, 19)), 0.0)
    )
    got = pv.forecast(index, [_array("a", 180.0)], dull)["a"]
    assert got.model == "pvlib_ghi"
    assert got.quantiles[0.5].max() < 0.15


def test_cloud_cover_to_ghi_is_the_linear_relation() -> None:
    """Larson et al. (2016): ghi = (35 + 65 x (1 - cover/100)) / 100 x clear-sky ghi."""
    clear = np.array([800.0, 800.0, 800.0, 0.0])
    got = cloud_cover_to_ghi(np.array([0.0, 50.0, 100.0, 50.0]), clear)
    np.testing.assert_allclose(got, [800.0, 0.675 * 800.0, 280.0, 0.0])


def test_cloud_cover_drives_the_forecast_where_no_ghi_is_given() -> None:
    index = quarter_hours("2026-06-21T00:00:00+02:00", 1)
    pv = PVForecaster(49.87, 8.65)
    temp = pd.Series(15.0, index=index)
    clear = pv._sun(index)[1]["ghi"].to_numpy()
    from_ghi = pv.forecast(index, [_array("a", 180.0)], Weather(temp, pd.Series(0.35 * clear, index=index)))["a"]
    overcast = pv.forecast(index, [_array("a", 180.0)], Weather(temp, cloud_cover_pct=pd.Series(100.0, index=index)))
    got = overcast["a"]
    assert got.model == "pvlib_ghi" and "cloud cover -> ghi" in got.notes
    # full overcast = 35 % of clear-sky GHI, then the same decomposition and transposition
    np.testing.assert_allclose(got.quantiles.to_numpy(), from_ghi.quantiles.to_numpy(), atol=1e-12)
    sunny = pv.forecast(index, [_array("a", 180.0)], Weather(temp, cloud_cover_pct=pd.Series(0.0, index=index)))
    assert sunny["a"].quantiles[0.5].sum() > 2 * got.quantiles[0.5].sum()


def test_heating_degree_model() -> None:
    model = HeatingDegreeModel.from_annual(12000.0)
    # over a typical year, HDD x 24 h of degree-hours give back the space-heat share
    assert model.slope_kw_per_k * HEATING_DEGREE_DAYS_K_D * 24 + model.dhw_kw * 8760 == pytest.approx(12000.0)
    index = quarter_hours("2026-01-12T00:00:00+01:00", 2)
    cold = model.predict(pd.Series(-5.0, index=index)).quantiles
    mild = model.predict(pd.Series(10.0, index=index)).quantiles
    assert (cold[0.5] > mild[0.5]).all()
    summer = model.predict(pd.Series(22.0, index=index)).quantiles
    np.testing.assert_allclose(summer[0.5], model.dhw_kw)
    with pytest.raises(InputError, match="gaps"):
        model.predict(pd.Series(np.nan, index=index))


def test_heating_degree_fit_recovers_parameters() -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 14)
    rng = np.random.default_rng(4)
    temp = pd.Series(5 + 6 * np.sin(np.arange(len(index)) / 300), index=index)
    heat = 0.3 + 0.25 * np.maximum(0, 15 - temp) + rng.normal(0, 0.1, len(index))
    model = HeatingDegreeModel.fit(heat, temp)
    assert model.slope_kw_per_k == pytest.approx(0.25, rel=0.03)
    assert model.dhw_kw == pytest.approx(0.3, abs=0.05)
    band = model.predict(temp).quantiles
    inside = ((heat >= band[0.1]) & (heat <= band[0.9])).mean()
    assert 0.75 < inside < 0.85


def test_pv_forecast_from_the_demo_truths_own_irradiance_reproduces_it() -> None:
    """The demo generator makes PV from its GHI through the forecaster's pvlib path: a forecast
    from that GHI (the weather.csv as written) gives the truth's site energy within 2 %."""
    demo_dir = Path(__file__).resolve().parents[2] / "data" / "demo"
    site = load_site(demo_dir / "site.yaml")
    truth = pd.read_csv(demo_dir / "pv_availability.csv", index_col=0)
    truth.index = pd.DatetimeIndex(pd.to_datetime(truth.index, utc=True))
    index = pd.DatetimeIndex(truth.index)
    model = PVForecaster(site.site.latitude, site.site.longitude, 144.0)
    forecast = model.forecast(index, site.pv_arrays, read_weather_csv(demo_dir / "weather.csv"))
    kwp = {a.id: a.kwp for a in site.pv_arrays}
    truth_kw = sum(truth[a] * k for a, k in kwp.items())
    forecast_kw = sum(forecast[a].quantiles[0.5] * k for a, k in kwp.items())
    assert truth_kw.sum() > 0
    assert abs(forecast_kw.sum() / truth_kw.sum() - 1) < 0.02
    assert float((forecast_kw - truth_kw).abs().max()) < 0.02 * float(truth_kw.max())


def test_calibration_per_connection() -> None:
    """Two connections whose arrays give 90 % and 60 % of the model: the site scale and one factor
    per connection reproduce each."""
    index = quarter_hours("2026-05-01T00:00:00+02:00", 7)
    arrays = [_array("a", 180.0), PVArray(id="b", connection="T2", kwp=5.0, tilt_deg=20.0, azimuth_deg=135.0)]
    pv = PVForecaster(49.87, 8.65)
    per_plane = pv.kw_per_kwp(index, [(30.0, 180.0), (20.0, 135.0)])
    by_conn = pd.DataFrame(
        {"T1": 0.9 * 10.0 * per_plane[(30.0, 180.0)], "T2": 0.6 * 5.0 * per_plane[(20.0, 135.0)]}, index=index
    )
    pv.calibrate(by_conn.sum(axis=1), pv.site_kw(index, arrays))
    pv.calibrate_connections(by_conn, arrays)
    assert set(pv.connection_scale) == {"T1", "T2"}
    target = quarter_hours("2026-05-08T00:00:00+02:00", 1)
    got = pv.forecast(target, arrays)
    plain = PVForecaster(49.87, 8.65).kw_per_kwp(target, [(30.0, 180.0), (20.0, 135.0)])
    np.testing.assert_allclose(got["a"].quantiles[0.5], 0.9 * plain[(30.0, 180.0)], rtol=0.01, atol=1e-9)
    np.testing.assert_allclose(got["b"].quantiles[0.5], 0.6 * plain[(20.0, 135.0)], rtol=0.01, atol=1e-9)


def test_real_pv_system_from_its_site_irradiance() -> None:
    """NREL SERF East (measured, data/real): calibrated on 14 days, 24 h ahead from 7 daily
    origins, the forecast from the site's irradiance gives a clearly smaller MAE than the scaled
    clear sky (the whole run measured 0.64 over 28 origins) and the measured energy within 12 %
    (the median of a partly cloudy hour lies above its mean: +10 % on these 7 days, +4 % over
    the 28; one scale instead of the regression gave 5 % and MAE ratio 0.69)."""
    from grid.forecast.pv import rolling_backtest_pv
    from grid.forecast.realdata import SERF_EAST, SERF_EAST_ARRAY, real_pv

    measured, weather = real_pv()
    site_weather = Weather(weather["temp_degc"], weather["ghi_w_per_m2"])
    last = measured.index[-1].normalize()
    origins = [last - pd.Timedelta(days=k) + pd.Timedelta(hours=7) for k in range(7, 0, -1)]
    result = rolling_backtest_pv(
        PVForecaster(**SERF_EAST), [PVArray(**SERF_EAST_ARRAY)], measured, site_weather, site_weather, origins
    )
    assert result.measured_kwh > 50
    assert abs(result.forecast_kwh / result.measured_kwh - 1) < 0.12
    assert result.mae_ratio < 0.75


def _cloudy_weather(pv: PVForecaster, index: pd.DatetimeIndex, seed: int) -> Weather:
    """Clear-sky GHI x a clear-sky index that changes every hour (0.2..1), 15 degC."""
    rng = np.random.default_rng(seed)
    kt = np.repeat(rng.uniform(0.2, 1.0, len(index) // 4 + 1), 4)[: len(index)]
    clear = pv._sun(index)[1]["ghi"].to_numpy()
    return Weather(pd.Series(15.0, index=index), pd.Series(kt * clear, index=index))


def test_calibration_on_the_irradiance_forecast_recovers_a_known_mix() -> None:
    """Hand case: measured PV = 0.8 x the model from the supplied GHI (a known scale), then
    0.5 x that + 0.3 x the clear-sky model (a forecast worth only part of its word): the
    regression gives back the factors (the clear-sky model is the sum of its terms at the
    clear-sky index knots, so 0.3 on each), and the forecast of a new day from its GHI forecast
    is that mix of the same day's two models."""

    def factors(ghi: float, clear: float) -> np.ndarray:
        out = np.zeros(len(MOS_TERMS))
        out[MOS_TERMS.index("ghi")] = ghi
        out[len(MOS_TERMS) - len(CLEAR_SKY_INDEX_KNOTS) :] = clear
        return out

    index = quarter_hours("2026-05-01T00:00:00+02:00", 10)
    arrays = [_array("a", 180.0)]
    pv = PVForecaster(49.87, 8.65)
    weather = _cloudy_weather(pv, index, 3)
    plane = (30.0, 180.0)
    from_ghi = pv.kw_per_kwp(index, [plane], weather)[plane] * 10.0
    clear = pv.kw_per_kwp(index, [plane], Weather(weather.temp_degc))[plane] * 10.0
    target = quarter_hours("2026-05-11T00:00:00+02:00", 1)
    ahead = _cloudy_weather(pv, target, 4)
    for measured, want in ((0.8 * from_ghi, (0.8, 0.0)), (0.5 * from_ghi + 0.3 * clear, (0.5, 0.3))):
        fitted = PVForecaster(49.87, 8.65).calibrate_arrays(pd.Series(measured, index=index), arrays, weather)
        assert fitted.mos is not None
        np.testing.assert_allclose(fitted.mos, factors(*want), atol=1e-3)
        got = fitted.forecast(target, arrays, ahead)["a"].quantiles[0.5].to_numpy()
        g = pv.kw_per_kwp(target, [plane], ahead)[plane]
        c = pv.kw_per_kwp(target, [plane], Weather(ahead.temp_degc))[plane]
        np.testing.assert_allclose(got, want[0] * g + want[1] * c, rtol=2e-3, atol=1e-6)
    # a forecast from clear sky alone keeps the plain scale (the regression needs irradiance)
    assert fitted.forecast(target, arrays)["a"].model == "pvlib_clearsky"


def test_calibration_on_the_irradiance_forecast_per_connection() -> None:
    """Two connections at 90 % and 60 % of the model from the supplied GHI: each gets its own
    regression (the site's lies between), and each array is forecast with its connection's."""
    index = quarter_hours("2026-05-01T00:00:00+02:00", 10)
    arrays = [_array("a", 180.0), PVArray(id="b", connection="T2", kwp=5.0, tilt_deg=20.0, azimuth_deg=135.0)]
    pv = PVForecaster(49.87, 8.65)
    weather = _cloudy_weather(pv, index, 5)
    planes = [(30.0, 180.0), (20.0, 135.0)]
    per_plane = pv.kw_per_kwp(index, planes, weather)
    by_conn = pd.DataFrame(
        {"T1": 0.9 * 10.0 * per_plane[planes[0]], "T2": 0.6 * 5.0 * per_plane[planes[1]]}, index=index
    )
    pv.calibrate_arrays(by_conn.sum(axis=1), arrays, weather, by_conn)
    only_ghi = np.eye(len(MOS_TERMS))[MOS_TERMS.index("ghi")]
    np.testing.assert_allclose(pv.connection_mos["T1"], 0.9 * only_ghi, atol=1e-3)
    np.testing.assert_allclose(pv.connection_mos["T2"], 0.6 * only_ghi, atol=1e-3)
    # the site's regression gives a total between the two connections' shares of the model
    assert pv.mos is not None
    terms = pv.mos_terms(index, planes, weather)
    site_fit = (10.0 * terms[planes[0]] + 5.0 * terms[planes[1]]) @ pv.mos
    site_model = 10.0 * per_plane[planes[0]] + 5.0 * per_plane[planes[1]]
    assert 0.6 < site_fit.sum() / site_model.sum() < 0.9
    target = quarter_hours("2026-05-11T00:00:00+02:00", 1)
    ahead = _cloudy_weather(pv, target, 6)
    got = pv.forecast(target, arrays, ahead)
    plain = pv.kw_per_kwp(target, planes, ahead)
    np.testing.assert_allclose(got["a"].quantiles[0.5], 0.9 * plain[planes[0]], rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(got["b"].quantiles[0.5], 0.6 * plain[planes[1]], rtol=2e-3, atol=1e-6)
    assert (np.diff(got["a"].quantiles.to_numpy(), axis=1) >= 0).all()


def test_clear_sky_terms_follow_the_forecasts_clear_sky_index() -> None:
    """Hand case: measured PV = the clear-sky model x the supplied GHI's clear-sky index k. The
    clear-sky terms are the clear-sky model x hat functions of k at the knots 0, 0.25 .. 1, and
    k itself is exactly sum_j knot_j x hat_j(k): the regression puts the knots' values on them
    and nothing on the other terms; a new day is forecast as its clear sky x its index."""
    index = quarter_hours("2026-05-01T00:00:00+02:00", 10)
    arrays = [_array("a", 180.0)]
    pv = PVForecaster(49.87, 8.65)
    weather = _cloudy_weather(pv, index, 7)
    plane = (30.0, 180.0)
    index_k = weather.ghi_w_per_m2.to_numpy() / np.maximum(pv._sun(index)[1]["ghi"].to_numpy(), 1e-9)
    clear = pv.kw_per_kwp(index, [plane], Weather(weather.temp_degc))[plane] * 10.0
    fitted = PVForecaster(49.87, 8.65).calibrate_arrays(pd.Series(clear * index_k, index=index), arrays, weather)
    assert fitted.mos is not None
    want = np.zeros(len(MOS_TERMS))
    want[len(MOS_TERMS) - len(CLEAR_SKY_INDEX_KNOTS) :] = CLEAR_SKY_INDEX_KNOTS
    np.testing.assert_allclose(fitted.mos, want, atol=1e-3)
    target = quarter_hours("2026-05-11T00:00:00+02:00", 1)
    ahead = _cloudy_weather(pv, target, 8)
    clear_ghi = pv._sun(target)[1]["ghi"].to_numpy()
    k_ahead = ahead.ghi_w_per_m2.to_numpy() / np.maximum(clear_ghi, 1e-9)
    got = fitted.forecast(target, arrays, ahead)["a"].quantiles[0.5].to_numpy()
    c = pv.kw_per_kwp(target, [plane], Weather(ahead.temp_degc))[plane]
    # below 20 W/m2 of clear-sky GHI (dawn, dusk) the index is not taken: index 0, nothing
    lit = clear_ghi > 20.0
    np.testing.assert_allclose(got[lit], (c * k_ahead)[lit], rtol=2e-3, atol=1e-6)
    assert (got[~lit] == 0).all()
