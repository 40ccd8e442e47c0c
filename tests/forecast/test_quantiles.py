"""Quantiles never cross, and the 10-90 % band covers about 80 % on data with known noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from grid.forecast.backtest import backtest
from grid.forecast.quantiles import ResidualQuantiles

from .conftest import quarter_hours, weekly_pattern_kw


@settings(max_examples=40, deadline=None)
@given(
    point=arrays(float, 96, elements=st.floats(-50, 50)),
    table=arrays(float, (24, 3), elements=st.floats(-10, 10)),
    multiplicative=st.booleans(),
)
def test_quantiles_never_cross(point: np.ndarray, table: np.ndarray, multiplicative: bool) -> None:
    index = pd.date_range("2026-03-29T00:00Z", periods=96, freq="15min")
    frame = ResidualQuantiles(table, (0.1, 0.5, 0.9)).apply(pd.Series(point, index=index), multiplicative)
    assert (np.diff(frame.to_numpy(), axis=1) >= 0).all()


def test_residual_quantiles_by_hour() -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 14)
    rng = np.random.default_rng(0)
    hour = index.tz_convert("Europe/Berlin").hour.to_numpy()
    residuals = pd.Series(rng.standard_normal(len(index)) * np.where(hour >= 12, 2.0, 0.5), index=index)
    band = ResidualQuantiles.fit(residuals)
    assert band.table[18, 2] - band.table[18, 0] > 3 * (band.table[3, 2] - band.table[3, 0])


def test_coverage_on_known_noise_is_near_80_percent() -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 56)
    rng = np.random.default_rng(20261125)
    series = weekly_pattern_kw(index) + rng.normal(0.0, 0.15, len(index))
    result = backtest(series, days=14, horizon_h=24, model="ridge")
    assert 0.75 <= result.metrics["coverage_80"] <= 0.85
    q = result.points[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    # with white noise the best possible MAE is the noise's: 0.15 x sqrt(2/pi) = 0.12 kW
    assert result.metrics["mae"] < 0.14
    assert result.metrics["mae_ratio"] < 0.85


def test_scaled_band_leans_on_the_neighbouring_lead_hours() -> None:
    """Hand case: residuals +-1 at every lead hour but +-3 at 00-01 h; with half of a bucket's
    scale from its neighbours the band at 00 h is (0.5 x 3 + 0.25 x (1 + 1)) = 2 x the quiet
    hours', at 01 h and, the table wrapping, at 23 h (0.5 + 0.25 x 4) = 1.5 x."""
    from grid.forecast.quantiles import NEIGHBOUR_SCALE_SHARE, HorizonConformal

    assert NEIGHBOUR_SCALE_SHARE == 0.5
    lead = np.repeat(np.arange(24.0), 20) + 0.5
    sign = np.tile([1.0, -1.0], 240)
    res = sign * np.where(lead // 1 == 0, 3.0, 1.0)
    # one quantile over all leads (lead_share 0): the table is the scale's shape alone
    band = HorizonConformal.fit_scaled(lead, res, np.ones(len(res), dtype=bool), (0.1, 0.5, 0.9), 24.0, lead_share=0.0)
    upper = band.table[:, 2] / band.table[12, 2]
    np.testing.assert_allclose(upper[[23, 0, 1, 12, 2]], [1.5, 2.0, 1.5, 1.0, 1.0])
    assert (band.table[:, 0] < 0).all() and (band.table[:, 2] > 0).all()


def test_scaled_band_takes_half_its_quantile_from_the_nearby_lead_hours() -> None:
    """Hand case: 20 residuals per lead hour, +-1 (mean |r| 1) except at 11, 12 and 13 h: 5 x +3
    and 15 x -1/3 (mean |r| also 1, so every scale is 1 and z = r). All 480 together: the 90 %
    conformal rank ceil(481 x 0.9) = 433 is +1 (only 15 values of +3). Within +-3 h of 10..14 h
    lie all three skewed hours: 140 values, rank ceil(141 x 0.9) = 127 falls among the 15 x +3
    (from rank 126): upper 0.5 x 3 + 0.5 x 1 = 2; two or fewer skewed hours near (8, 9, 15, 16 h)
    or none: +1. The 10 % rank is -1 everywhere."""
    from grid.forecast.quantiles import LEAD_QUANTILE_POOL_H, LEAD_QUANTILE_SHARE, HorizonConformal

    assert (LEAD_QUANTILE_POOL_H, LEAD_QUANTILE_SHARE) == (3, 0.5)
    normal = np.tile([1.0, -1.0], 10)
    skewed = np.array([3.0] * 5 + [-1.0 / 3.0] * 15)
    res = np.concatenate([skewed if h in (11, 12, 13) else normal for h in range(24)])
    lead = np.repeat(np.arange(24.0), 20) + 0.5
    band = HorizonConformal.fit_scaled(lead, res, np.ones(len(res), dtype=bool), (0.1, 0.5, 0.9), 24.0)
    want = np.where((np.arange(24) >= 10) & (np.arange(24) <= 14), 2.0, 1.0)
    np.testing.assert_allclose(band.table[:, 2], want)
    np.testing.assert_allclose(band.table[:, 0], -1.0)
    np.testing.assert_allclose(band.table[:, 1], 0.0)
