"""The global LightGBM load model: learns across meters of different size, saves and loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from grid.forecast.gbm import GlobalLoad

from .conftest import quarter_hours, weekly_pattern_kw


def test_one_model_serves_meters_of_any_size_and_round_trips(tmp_path: Path) -> None:
    """Three meters of the same weekly shape at 1, 3 and 10 kW scale: a fourth meter at 5 kW that
    the model never saw is forecast from its own history within 3 % (the shape is shared, the
    scale is the meter's own)."""
    index = quarter_hours("2026-01-05T00:00:00+01:00", 42)
    shape = weekly_pattern_kw(index)
    rng = np.random.default_rng(3)
    histories = {f"m{k}": shape * k * (1 + 0.02 * rng.standard_normal(len(index))) for k in (1.0, 3.0, 10.0)}
    model = GlobalLoad(24, rounds=120).fit(histories)
    assert model.n_series == 3 and model.out_of_sample_after("m3.0") == index[-1]
    new = shape * 5.0
    origin = index[-1] + pd.Timedelta(minutes=15)
    target = pd.date_range(origin, periods=96, freq="15min")
    truth = weekly_pattern_kw(target) * 5.0
    point = model.point(new, target)
    assert point.notna().all()
    assert float((point - truth).abs().mean() / truth.mean()) < 0.03
    path = tmp_path / "global.json"
    model.save(path)
    again = GlobalLoad.load(path)
    np.testing.assert_array_equal(again.point(new, target).to_numpy(), point.to_numpy())
    assert again.out_of_sample_after("m3.0") == index[-1]
