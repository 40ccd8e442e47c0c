"""PV availability forecast (kW per kWp) per array with pvlib, calibrated on measured PV.

For each array geometry (tilt, azimuth) the plane-of-array irradiance comes from either

* a supplied GHI forecast (``Weather.ghi_w_per_m2``, W/m2), split into DNI/DHI with Erbs; or
* Ineichen clear-sky irradiance (pvlib's Linke turbidity climatology), optionally times a
  clear-sky index forecast (0..1, "cloud" forecast);

then Hay-Davies transposition, Faiman cell temperature and a temperature coefficient, times a
system factor, at the mid-point of each 15-minute interval. Output kW/kWp is >= 0.

Calibration (:meth:`PVForecaster.calibrate`): measured site PV (kW generated, positive) against
the modelled sum over the arrays (kWp x kW/kWp) over the same past intervals gives one scale
factor (soiling, shading, inverter limits the model does not know) and the 10/50/90 % band from
the ratio measured / modelled in daylight. Without measurements the scale is 1 and the band is a
stated presumption (:data:`CLEAR_SKY_BAND`, :data:`IRRADIANCE_BAND`), which ``notes`` says.

Calibration of a forecast from a supplied weather forecast (:meth:`PVForecaster.calibrate_arrays`,
model output statistics): measured PV against the model run on the *same supplied irradiance* over
the past days (the weather forecast as it was issued for them, or measured irradiance where that
is all there is), per connection point where its PV is measured and for the whole site, as a
least-absolute-deviations regression without intercept on modelled series of the group's
arrays (:data:`MOS_TERMS`)::

    measured kW ~ a x P(GHI) + c x P(GHI) x (1 - sin(sun elevation)) + d x P(GHI of the day)
                  + sum_j b_j x P(clear sky) x hat_j(k)

with k the supplied GHI's clear-sky index (GHI / clear-sky GHI, 0..1) and hat_j the
piecewise-linear hat functions at :data:`CLEAR_SKY_INDEX_KNOTS` (0, 0.25 .. 1). ``a`` is the
system's scale seen through the forecast's own bias; the ``b_j`` are the clear-sky model's share
as a piecewise-linear function of the forecast index, i.e. the conditional median of the measured
PV given what the forecast says (a forecast that says 1 is capped at clear sky and trusted more
than one that says 0.3, whose real sky may be anywhere from overcast to clear: one factor on the
clear sky, as before, could not tell them apart); ``c`` the losses or gains at low sun (reflection
at the glass, horizon shading) the transposition model does not know; ``d`` weighs the model run
on the GHI whose clear-sky index is half the interval's and half its solar day's mean
(:data:`DAY_MIX`): a forecast's error persists for hours, but the day's cloudiness is what it
knows best. The median (least absolute deviations) because the planner's point forecast is a median
(like the load's): where the irradiance is uncertain the median of the measured PV lies above its
mean (a partly cloudy hour is either sunny or shaded), so the median forecast's energy runs a few
per cent high (SERF East: +4 % over 45 daily origins of its first 9 weeks).

Chosen on the first 9 weeks of NREL's SERF East (45 daily origins, 24 h ahead, not the 28 the
benchmark reports) and on synthetic demo sites of seeds 10-21 (not the benchmark's; 14 windows of
48 h each, the benchmark's GHI forecast error): MAE / scaled clear sky on SERF East 0.689 (0.711
with one clear-sky factor and no day term, 0.700 with one scale); synthetic, pooled, seeds 10-15
0.513 and 16-21 0.467 (0.548 and 0.507 before); the piecewise-linear clear-sky terms and the day
term each helped on all three (0.529 / 0.478 / 0.693 and 0.519 / 0.493 / 0.710 alone). A forecast
that knew the generator and the error model exactly and took each interval alone (the posterior
median) would reach 0.483 on seeds 10-15.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pvlib

from grid.domain import PVArray
from grid.errors import InputError
from grid.forecast.quantiles import QUANTILES, Forecast, quantile_frame
from grid.forecast.weather import Weather, cloud_cover_to_ghi

SYSTEM_FACTOR = 0.86  # inverter, wiring, soiling, mismatch; temperature separately
GAMMA_PER_K = -0.004
WIND_M_PER_S = 2.0
ALBEDO = 0.2
STC_W_PER_M2 = 1000.0
STC_CELL_DEGC = 25.0
MAX_KW_PER_KWP = 1.1
DEFAULT_AIR_DEGC = 10.0
#: Multipliers (10/50/90 %) of a clear-sky forecast without measurements: a clear sky is the
#: upper end; the median day in Central Europe gets roughly half (presumption).
CLEAR_SKY_BAND = (0.1, 0.55, 1.0)
#: Multipliers of a forecast from a supplied irradiance forecast without measurements.
IRRADIANCE_BAND = (0.6, 1.0, 1.3)
#: Intervals count as daylight for calibration when the model gives more than this (kW/kWp).
DAYLIGHT_KW_PER_KWP = 0.05
SCALE_RANGE = (0.3, 1.5)
MIN_CALIBRATION_POINTS = 40
#: Terms of the regression of :meth:`PVForecaster.calibrate_arrays` and the bounds of their factors.
#: Clear-sky index (supplied GHI / clear-sky GHI) at the knots of the piecewise-linear clear-sky
#: terms: ``clear_sky_at_<k>`` is the clear-sky model x the hat function of the index at knot k.
CLEAR_SKY_INDEX_KNOTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MOS_TERMS = ("ghi", "ghi_low_sun", "ghi_day", *(f"clear_sky_at_{k:g}" for k in CLEAR_SKY_INDEX_KNOTS))
MOS_BOUNDS = (
    (0.0, SCALE_RANGE[1]),
    (-1.0, 1.0),
    (0.0, SCALE_RANGE[1]),
    *((0.0, SCALE_RANGE[1]),) * len(CLEAR_SKY_INDEX_KNOTS),
)
#: Weight of the interval's own clear-sky index in ``ghi_day`` (the rest: its solar day's mean).
DAY_MIX = 0.5
#: Clear-sky GHI (W/m2) below which an interval's clear-sky index is not taken (dawn, dusk, night).
MIN_CLEAR_GHI_W_PER_M2 = 20.0
#: Daylight intervals a regression needs (about three winter days); fewer: the plain scale.
MIN_MOS_POINTS = 96


def lad_fit(x: np.ndarray, y: np.ndarray, bounds: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Least absolute deviations without intercept: argmin_b sum |y - x b| with each b_k within its
    bounds, as a linear program (HiGHS through scipy): x b + u - v = y, u, v >= 0."""
    from scipy import sparse
    from scipy.optimize import linprog

    n, k = x.shape
    eye = sparse.identity(n, format="csr")
    a_eq = sparse.hstack([sparse.csr_matrix(x), eye, -eye], format="csr")
    cost = np.concatenate([np.zeros(k), np.ones(2 * n)])
    result = linprog(cost, A_eq=a_eq, b_eq=y, bounds=[*bounds, *[(0.0, None)] * (2 * n)], method="highs")
    if not result.success:
        raise InputError("PV calibration", "the regression on measured PV did not solve", result.message)
    return np.asarray(result.x[:k], dtype=float)


def irradiance_given(weather: Weather | None) -> bool:
    """True if `weather` carries GHI or cloud cover (converted to GHI), not only temperature."""
    return weather is not None and (weather.ghi_w_per_m2 is not None or weather.cloud_cover_pct is not None)


def split_ghi(ghi: np.ndarray, zenith: np.ndarray, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """DNI and DHI (W/m2) from GHI (W/m2) with Erbs at the interval mid-points of `index`."""
    split = pvlib.irradiance.erbs(ghi, zenith, index + pd.Timedelta(minutes=7.5))
    return np.asarray(split["dni"], dtype=float), np.asarray(split["dhi"], dtype=float)


def plane_kw_per_kwp(
    tilt_deg: float,
    azimuth_deg: float,
    zenith: np.ndarray,
    sun_azimuth: np.ndarray,
    dni: np.ndarray,
    ghi: np.ndarray,
    dhi: np.ndarray,
    dni_extra: np.ndarray,
    temp_degc: float | np.ndarray,
) -> np.ndarray:
    """kW/kWp of one plane: Hay-Davies POA (W/m2) / 1000 x Faiman temperature factor x system
    factor, clipped to 0..MAX_KW_PER_KWP. The demo generator makes its PV truth with this same
    function from its own GHI (:func:`grid.demo.pv_availability_kw_per_kwp`)."""
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        azimuth_deg,
        zenith,
        sun_azimuth,
        dni,
        ghi,
        dhi,
        dni_extra=dni_extra,
        albedo=ALBEDO,
        model="haydavies",
    )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa, dtype=float), nan=0.0)
    cell = pvlib.temperature.faiman(poa, temp_degc, WIND_M_PER_S)
    power = poa / STC_W_PER_M2 * (1 + GAMMA_PER_K * (cell - STC_CELL_DEGC)) * SYSTEM_FACTOR
    return np.asarray(np.clip(power, 0.0, MAX_KW_PER_KWP), dtype=float)


def _supplied_ghi(here: Weather, clear_ghi_w_per_m2: np.ndarray) -> np.ndarray:
    """GHI (W/m2) of `here` (weather on the intervals of `clear_ghi_w_per_m2`, with irradiance
    given): its GHI, else its cloud cover converted with the clear-sky GHI."""
    if here.ghi_w_per_m2 is not None:
        return here.ghi_w_per_m2.to_numpy(dtype=float)
    assert here.cloud_cover_pct is not None
    return cloud_cover_to_ghi(here.cloud_cover_pct.to_numpy(dtype=float), clear_ghi_w_per_m2)


@dataclass
class PVForecaster:
    """pvlib model of a site's arrays (latitude/longitude in degrees, altitude m)."""

    latitude: float
    longitude: float
    altitude_m: float = 0.0
    quantiles: tuple[float, ...] = QUANTILES
    scale: float = 1.0
    ratio_quantiles: np.ndarray | None = None
    calibrated_from_ghi: bool = False
    #: per connection point: measured / (scale x modelled) of its arrays (1 = like the site)
    connection_scale: dict[str, float] = field(default_factory=dict)
    #: factors of :data:`MOS_TERMS` for a forecast from supplied irradiance (calibrate_arrays),
    #: for the site and per connection point with its own measured PV
    mos: np.ndarray | None = None
    connection_mos: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def _sun(self, index: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        mid = index + pd.Timedelta(minutes=7.5)
        place = pvlib.location.Location(self.latitude, self.longitude, tz="UTC", altitude=self.altitude_m)
        sun = place.get_solarposition(mid)
        clear = place.get_clearsky(mid, model="ineichen", solar_position=sun)
        extra = pvlib.irradiance.get_extra_radiation(mid)
        return sun, clear, extra

    def kw_per_kwp(
        self,
        index: pd.DatetimeIndex,
        planes: list[tuple[float, float]],
        weather: Weather | None = None,
        clear_sky_index: pd.Series | None = None,
    ) -> dict[tuple[float, float], np.ndarray]:
        """Modelled availability (kW/kWp, uncalibrated) per plane (tilt_deg, azimuth_deg)."""
        sun, clear, extra = self._sun(index)
        zenith = sun["apparent_zenith"].to_numpy()
        ghi_given = irradiance_given(weather)
        if ghi_given:
            assert weather is not None
            ghi = _supplied_ghi(weather.on(index), clear["ghi"].to_numpy())
            dni, dhi = split_ghi(ghi, zenith, index)
        else:
            factor = 1.0 if clear_sky_index is None else clear_sky_index.reindex(index).to_numpy(dtype=float)
            ghi = clear["ghi"].to_numpy() * factor
            dni = clear["dni"].to_numpy() * factor
            dhi = clear["dhi"].to_numpy() * factor
        temp: float | np.ndarray = DEFAULT_AIR_DEGC
        if weather is not None:
            temp = weather.on(index).temp_degc.fillna(DEFAULT_AIR_DEGC).to_numpy()
        azimuth_sun = sun["azimuth"].to_numpy()
        return {
            (tilt, azimuth): plane_kw_per_kwp(tilt, azimuth, zenith, azimuth_sun, dni, ghi, dhi, extra.to_numpy(), temp)
            for tilt, azimuth in planes
        }

    def site_kw(self, index: pd.DatetimeIndex, arrays: list[PVArray], weather: Weather | None = None) -> pd.Series:
        """Modelled generation of all arrays together (kW, positive, uncalibrated)."""
        planes = sorted({(a.tilt_deg, a.azimuth_deg) for a in arrays})
        per_plane = self.kw_per_kwp(index, planes, weather)
        total = np.zeros(len(index))
        for a in arrays:
            total += a.kwp * per_plane[(a.tilt_deg, a.azimuth_deg)]
        return pd.Series(total, index=index, name="pv_kw")

    def calibrate(self, measured_kw: pd.Series, modelled_kw: pd.Series, from_ghi: bool = False) -> PVForecaster:
        """Scale and band from measured generation (kW, positive) vs the modelled sum (kW).

        `from_ghi` says whether `modelled_kw` came from measured irradiance (then the scale is the
        system's) or from clear sky (then it also holds the typical cloudiness): a calibration
        is only applied to forecasts made the same way, else clouds would count twice.
        """
        self.calibrated_from_ghi = from_ghi
        both = pd.DataFrame({"m": measured_kw.abs(), "p": modelled_kw}).dropna()
        peak = float(both["p"].max()) if len(both) else 0.0
        day = both[both["p"] > DAYLIGHT_KW_PER_KWP * max(peak, 1e-9)] if peak > 0 else both.iloc[:0]
        if len(day) < MIN_CALIBRATION_POINTS:
            self.notes.append(
                f"PV not calibrated: {len(day)} daylight interval(s) measured (< {MIN_CALIBRATION_POINTS})"
            )
            return self
        raw = float(day["m"].sum() / day["p"].sum())
        self.scale = float(np.clip(raw, *SCALE_RANGE))
        ratio = day["m"].to_numpy() / (self.scale * day["p"].to_numpy())
        self.ratio_quantiles = np.quantile(ratio, self.quantiles)
        self.notes.append(f"PV calibrated on {len(day)} daylight intervals: scale {self.scale:.3f} (raw {raw:.3f})")
        return self

    def calibrate_connections(
        self, measured_kw: pd.DataFrame, arrays: list[PVArray], weather: Weather | None = None
    ) -> PVForecaster:
        """After :meth:`calibrate`: one more factor per connection point (shading, orientation
        errors, curtailment of one street), from its measured PV (kW generated, one column per
        connection id) against its own arrays' model x the site scale, in daylight. Connections
        with fewer than MIN_CALIBRATION_POINTS daylight intervals keep the site's calibration."""
        index = pd.DatetimeIndex(measured_kw.index)
        planes = sorted({(a.tilt_deg, a.azimuth_deg) for a in arrays})
        per_plane = self.kw_per_kwp(index, planes, weather)
        for cid in measured_kw.columns:
            mine = [a for a in arrays if a.connection == cid]
            if not mine:
                continue
            modelled = self.scale * sum(a.kwp * per_plane[(a.tilt_deg, a.azimuth_deg)] for a in mine)
            both = pd.DataFrame({"m": measured_kw[cid].abs().to_numpy(), "p": modelled}, index=index).dropna()
            peak = float(both["p"].max()) if len(both) else 0.0
            day = both[both["p"] > DAYLIGHT_KW_PER_KWP * peak] if peak > 0 else both.iloc[:0]
            if len(day) < MIN_CALIBRATION_POINTS:
                self.notes.append(f"PV of connection {cid} not calibrated on its own: {len(day)} daylight interval(s)")
                continue
            factor = float(np.clip(day["m"].sum() / day["p"].sum(), *SCALE_RANGE))
            self.connection_scale[str(cid)] = factor
            self.notes.append(f"PV of connection {cid}: factor {factor:.3f} on the site scale ({len(day)} intervals)")
        return self

    def mos_terms(
        self, index: pd.DatetimeIndex, planes: list[tuple[float, float]], weather: Weather
    ) -> dict[tuple[float, float], np.ndarray]:
        """Per plane the (len(index), len(MOS_TERMS)) modelled kW/kWp of :data:`MOS_TERMS`; NaN
        rows where `weather` has no irradiance."""
        here = weather.on(index)
        given = here.ghi_w_per_m2 if here.ghi_w_per_m2 is not None else here.cloud_cover_pct
        missing = np.ones(len(index), dtype=bool) if given is None else given.isna().to_numpy()
        from_ghi = self.kw_per_kwp(index, planes, weather)
        clear = self.kw_per_kwp(index, planes, Weather(here.temp_degc))
        sun, clear_irr, _ = self._sun(index)
        low_sun = 1.0 - np.sin(np.radians(np.clip(90.0 - sun["apparent_zenith"].to_numpy(), 0.0, 90.0)))
        now, day = self.clear_sky_index(index, weather)
        mixed = clear_irr["ghi"].to_numpy() * (DAY_MIX * now + (1.0 - DAY_MIX) * day)
        from_day = self.kw_per_kwp(index, planes, Weather(here.temp_degc, pd.Series(mixed, index=index)))
        knots = np.asarray(CLEAR_SKY_INDEX_KNOTS)
        hats = np.column_stack([np.interp(now, knots, np.eye(len(knots))[j]) for j in range(len(knots))])
        out = {
            p: np.column_stack([from_ghi[p], from_ghi[p] * low_sun, from_day[p], clear[p][:, None] * hats])
            for p in planes
        }
        for terms in out.values():
            terms[missing] = np.nan
        return out

    def clear_sky_index(self, index: pd.DatetimeIndex, weather: Weather) -> tuple[np.ndarray, np.ndarray]:
        """The supplied GHI's clear-sky index (0..1) per interval of `index` and its mean over the
        daylight of the interval's solar day (0 where the clear-sky GHI is below
        :data:`MIN_CLEAR_GHI_W_PER_M2`). The day's mean is taken over whole solar days, so a
        forecast starting at noon sees the same day as one made at midnight. A forecast's error
        persists for hours, but the day's cloudiness is what it knows best."""
        shift = pd.Timedelta(hours=self.longitude / 15.0)
        step = pd.Timedelta(minutes=15)
        before = (index[0] + shift) - (index[0] + shift).floor("D")
        after = (index[-1] + shift).floor("D") + pd.Timedelta(days=1) - (index[-1] + shift)
        wide = pd.date_range(index[0] - (before // step) * step, index[-1] + (after // step) * step, freq=step)
        clear_ghi = self._sun(wide)[1]["ghi"].to_numpy()
        ghi = _supplied_ghi(weather.on(wide), clear_ghi)
        lit = clear_ghi > MIN_CLEAR_GHI_W_PER_M2
        ratio = np.clip(ghi / np.where(lit, clear_ghi, 1.0), 0.0, 1.0)
        now = pd.Series(np.where(lit, ratio, np.nan), index=wide)
        day = now.groupby((wide + shift).floor("D")).transform("mean")
        pick = wide.get_indexer(index)
        return np.nan_to_num(now.to_numpy()[pick]), np.nan_to_num(day.to_numpy()[pick])

    def calibrate_arrays(
        self,
        measured_kw: pd.Series,
        arrays: list[PVArray],
        weather: Weather | None,
        by_connection: pd.DataFrame | None = None,
    ) -> PVForecaster:
        """Calibrate on measured site PV (kW generated, positive) and, where given, each connection
        point's measured PV (one column per connection id), against the model run on `weather`
        over the same intervals (the supplied irradiance forecast as issued for them).

        Always the site's scale and band (:meth:`calibrate`); with irradiance in `weather` also
        the regression of the module docstring, for the site and per connection with at least
        :data:`MIN_MOS_POINTS` daylight intervals, used by :meth:`forecast` from supplied
        irradiance (connections without one use the site's). Without irradiance the connections
        get a plain factor (:meth:`calibrate_connections`)."""
        index = pd.DatetimeIndex(measured_kw.index)
        from_ghi = irradiance_given(weather)
        self.calibrate(measured_kw, self.site_kw(index, arrays, weather), from_ghi=from_ghi)
        if not from_ghi:
            if by_connection is not None:
                self.calibrate_connections(by_connection, arrays, weather)
            return self
        assert weather is not None
        planes = sorted({(a.tilt_deg, a.azimuth_deg) for a in arrays})
        terms = self.mos_terms(index, planes, weather)
        groups: list[tuple[str | None, pd.Series, list[PVArray]]] = [(None, measured_kw, arrays)]
        if by_connection is not None:
            for column in by_connection.columns:
                mine = [a for a in arrays if a.connection == column]
                if mine:
                    groups.append((str(column), by_connection[column].reindex(index), mine))
        ratios = None
        for cid, measured, mine in groups:
            x = sum(a.kwp * terms[(a.tilt_deg, a.azimuth_deg)] for a in mine)
            assert isinstance(x, np.ndarray)
            y = measured.abs().to_numpy(dtype=float)
            # daylight: the model from the supplied GHI or from clear sky (the hats sum to it)
            basis = np.column_stack([x[:, 0], x[:, len(MOS_TERMS) - len(CLEAR_SKY_INDEX_KNOTS) :].sum(axis=1)])
            peak = float(np.nanmax(basis)) if len(x) else 0.0
            day = (basis.max(axis=1) > DAYLIGHT_KW_PER_KWP * peak) & np.isfinite(y) & np.isfinite(x).all(axis=1)
            what = "site" if cid is None else f"connection {cid}"
            if peak <= 0 or day.sum() < MIN_MOS_POINTS:
                self.notes.append(
                    f"PV of the {what}: no regression on the irradiance forecast ({int(day.sum())} intervals)"
                )
                continue
            factors = lad_fit(x[day], y[day], MOS_BOUNDS)
            fitted = x[day] @ factors
            if cid is None:
                self.mos = factors
                lit = fitted > DAYLIGHT_KW_PER_KWP * peak
                ratios = y[day][lit] / fitted[lit]
            else:
                self.connection_mos[cid] = factors
            terms_text = ", ".join(f"{t} {f:.3f}" for t, f in zip(MOS_TERMS, factors, strict=True))
            self.notes.append(f"PV of the {what} on the irradiance forecast ({int(day.sum())} intervals): {terms_text}")
        if ratios is not None and len(ratios) >= MIN_CALIBRATION_POINTS:
            self.ratio_quantiles = np.quantile(ratios, self.quantiles)
        return self

    def forecast(
        self,
        index: pd.DatetimeIndex,
        arrays: list[PVArray],
        weather: Weather | None = None,
        clear_sky_index: pd.Series | None = None,
    ) -> dict[str, Forecast]:
        """Quantile forecasts of availability (kW/kWp) per array id."""
        planes = sorted({(a.tilt_deg, a.azimuth_deg) for a in arrays})
        per_plane = self.kw_per_kwp(index, planes, weather, clear_sky_index)
        ghi_given = irradiance_given(weather)
        notes = list(self.notes)
        scale = self.scale
        if self.ratio_quantiles is not None and self.calibrated_from_ghi == ghi_given:
            factors = self.ratio_quantiles
        else:
            factors = np.interp(self.quantiles, QUANTILES, IRRADIANCE_BAND if ghi_given else CLEAR_SKY_BAND)
            if self.ratio_quantiles is not None:
                scale = 1.0
                notes.append("PV calibration not applied: it was made from clear sky, the forecast uses GHI")
            notes.append("PV band: presumed multipliers (no calibration made the same way)")
        from_cloud = ghi_given and weather is not None and weather.ghi_w_per_m2 is None
        source = "clear-sky x index" if clear_sky_index is not None else "clear sky"
        if ghi_given:
            source = "cloud cover -> ghi" if from_cloud else "ghi forecast"
        model = "pvlib_ghi" if ghi_given else "pvlib_clearsky"
        out = {}
        own = self.connection_scale if self.calibrated_from_ghi == ghi_given else {}
        mos_terms = None
        if ghi_given and self.calibrated_from_ghi and self.mos is not None:
            assert weather is not None
            mos_terms = self.mos_terms(index, planes, weather)
            notes.append("PV calibrated on the irradiance forecast (regression per connection or site)")
        for a in arrays:
            base = scale * own.get(a.connection, 1.0) * per_plane[(a.tilt_deg, a.azimuth_deg)]
            if mos_terms is not None:
                mos = self.connection_mos.get(a.connection, self.mos)
                # no irradiance in an interval: nothing, as the uncalibrated model gives
                base = np.maximum(np.nan_to_num(mos_terms[(a.tilt_deg, a.azimuth_deg)] @ mos, nan=0.0), 0.0)
            values = np.clip(base[:, None] * factors[None, :], 0.0, MAX_KW_PER_KWP)
            out[a.id] = Forecast(quantile_frame(values, index, self.quantiles), model, "kW/kWp", [*notes, source])
        return out


@dataclass(frozen=True)
class PVBacktest:
    """MAE (kW) of the site's PV over a held-out window: the calibrated GHI forecast and the
    calibrated ("scaled") clear sky, and their ratio (below 1: the weather forecast helps)."""

    mae_kw: float
    clear_sky_mae_kw: float
    measured_kwh: float
    forecast_kwh: float

    @property
    def mae_ratio(self) -> float:
        return self.mae_kw / self.clear_sky_mae_kw if self.clear_sky_mae_kw > 0 else float("nan")


def backtest_pv(
    model: PVForecaster,
    arrays: list[PVArray],
    measured_kw: pd.Series,
    measured_weather: Weather,
    forecast_weather: Weather,
    origin: pd.Timestamp,
    calibration: str = "regression",
) -> PVBacktest:
    """Calibrate on measured PV (kW) before `origin` twice, for the forecast from irradiance and
    for clear sky; forecast every interval from `origin` on (median) from the forecast GHI and
    from the scaled clear sky; MAE (kW) of both against the measured generation.

    `calibration` of the forecast from irradiance: ``regression``
    (:meth:`PVForecaster.calibrate_arrays` on the forecast weather's own past where its GHI covers
    it, as the service calibrates on the weather forecasts as issued; else on the measured
    weather) or ``scale`` (one factor against the model from the measured GHI)."""
    index = pd.DatetimeIndex(measured_kw.index)
    past, ahead = index[index < origin], index[index >= origin]
    kwp = {a.id: a.kwp for a in arrays}
    medians = []
    for weather_past, weather_ahead in ((measured_weather, forecast_weather), (None, None)):
        fitted = PVForecaster(model.latitude, model.longitude, model.altitude_m)
        if weather_past is not None and calibration == "regression":
            issued = forecast_weather.on(past)
            covered = issued.ghi_w_per_m2 is not None and bool(issued.ghi_w_per_m2.notna().all())
            use = forecast_weather if covered else weather_past
            fitted.calibrate_arrays(measured_kw[past], arrays, use)
        else:
            fitted.calibrate(
                measured_kw[past], fitted.site_kw(past, arrays, weather_past), from_ghi=weather_past is not None
            )
        per_array = fitted.forecast(ahead, arrays, weather_ahead)
        medians.append(sum(per_array[a].quantiles[0.5].to_numpy() * kwp[a] for a in kwp))
    actual = measured_kw[ahead].abs().to_numpy()
    return PVBacktest(
        mae_kw=float(np.mean(np.abs(medians[0] - actual))),
        clear_sky_mae_kw=float(np.mean(np.abs(medians[1] - actual))),
        measured_kwh=float(actual.sum() / 4),
        forecast_kwh=float(np.sum(medians[0]) / 4),
    )


def rolling_backtest_pv(
    model: PVForecaster,
    arrays: list[PVArray],
    measured_kw: pd.Series,
    measured_weather: Weather,
    forecast_weather: Weather,
    origins: list[pd.Timestamp],
    calibration_days: float = 14.0,
    horizon_h: float = 24.0,
    calibration: str = "regression",
) -> PVBacktest:
    """:func:`backtest_pv` from each origin (calibrated on the `calibration_days` before it,
    forecasting `horizon_h` after it), pooled: MAE (kW) over all forecast intervals, energies summed."""
    results = []
    for origin in origins:
        window = (measured_kw.index >= origin - pd.Timedelta(days=calibration_days)) & (
            measured_kw.index < origin + pd.Timedelta(hours=horizon_h)
        )
        part = measured_kw[window]
        if part.isna().any():
            raise InputError("measured PV", "has gaps in a backtest window", origin.isoformat())
        results.append(backtest_pv(model, arrays, part, measured_weather, forecast_weather, origin, calibration))
    return PVBacktest(
        mae_kw=float(np.mean([r.mae_kw for r in results])),
        clear_sky_mae_kw=float(np.mean([r.clear_sky_mae_kw for r in results])),
        measured_kwh=float(sum(r.measured_kwh for r in results)),
        forecast_kwh=float(sum(r.forecast_kwh for r in results)),
    )
