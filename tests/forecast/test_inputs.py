"""Series and weather given in Python or CSV: clear messages naming the row; gaps kept as NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grid.errors import InputError
from grid.forecast.inputs import check_series
from grid.forecast.weather import Weather, read_weather_csv


def test_check_series_keeps_gaps_and_names_bad_rows() -> None:
    index = pd.date_range("2026-01-12T00:00Z", periods=8, freq="15min")
    series = pd.Series(np.arange(8.0), index=index).drop(index[3])
    full = check_series(series)
    assert len(full) == 8 and np.isnan(full.iloc[3]) and str(full.index.tz) == "UTC"
    with pytest.raises(InputError, match="row 0: timestamps have no UTC offset"):
        check_series(pd.Series(1.0, index=index.tz_localize(None)))
    with pytest.raises(InputError, match="row 2: duplicate timestamp"):
        check_series(pd.Series(1.0, index=index[[0, 1, 1, 2]]))
    with pytest.raises(InputError, match="row 2: timestamp goes backwards"):
        check_series(pd.Series(1.0, index=index[[0, 2, 1]]))
    with pytest.raises(InputError, match="row 1: not a finite number"):
        check_series(pd.Series([1.0, np.inf], index=index[:2]))


def test_weather_csv_and_hourly_interpolation(tmp_path: Path) -> None:
    path = tmp_path / "temp.csv"
    path.write_text(
        "timestamp,temp_degc,ghi_w_per_m2\n"
        "2026-01-12T00:00:00+01:00,2.0,0\n"
        "2026-01-12T01:00:00+01:00,4.0,0\n"
        "2026-01-12T02:00:00+01:00,6.0,0\n",
        encoding="utf-8",
    )
    weather = read_weather_csv(path)
    index = pd.date_range("2026-01-11T23:00Z", periods=12, freq="15min")
    on = weather.on(index).temp_degc
    np.testing.assert_allclose(on.iloc[:9], [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0])
    assert on.iloc[9:].isna().all()  # never extrapolated
    assert not weather.covers(index)
    path.write_text("timestamp,temp_degc\n2026-01-12T00:00:00+01:00,2850\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2 column temp_degc: outside"):
        read_weather_csv(path)
    path.write_text("timestamp,temp\n2026-01-12T00:00:00+01:00,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'temp_degc' column"):
        read_weather_csv(path)


def test_weather_object_in_python() -> None:
    index = pd.date_range("2026-01-12T00:00Z", periods=4, freq="15min")
    weather = Weather(pd.Series([1.0, 2.0, 3.0, 4.0], index=index.tz_convert("Europe/Berlin")))
    assert weather.covers(index)
