"""Accuracy over time: stored beliefs against the measurements, checked against a hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from grid.errors import InputError
from grid.forecast.accuracy import forecast_accuracy
from grid.forecast.cli import app
from grid.forecast.site import open_store
from grid.store.forecasts import store_forecast
from grid.store.readback import site_aggregates

from .test_site import fill, small_site

T0 = pd.Timestamp("2026-01-20T22:45:00Z")  # 23:45 local: the run spans two local days


def _run(values: list[tuple[float, float, float]], first: pd.Timestamp, steps: list[int]) -> pd.DataFrame:
    index = pd.DatetimeIndex([first + pd.Timedelta(minutes=15 * s) for s in steps])
    return pd.DataFrame(values, index=index, columns=[0.1, 0.5, 0.9])


def store_hand_case(store: Engine, site: str = "q1") -> dict[str, dict]:
    """Store two runs of ``site`` around the measured values of `site` (from T0 for 3 h) and
    return the accuracy computed by hand: {"overall": row, "by_day": {day: row}, "by_horizon": {h: row}}."""
    measured = site_aggregates(store, site, T0, T0 + pd.Timedelta(hours=3))["household_load_kw"]
    m = [float(measured.iloc[i]) for i in range(12)]
    # run A issued at T0: intervals 0, 1 (horizon 0 h, days 20 and 21) and 5 (horizon 1 h)
    run_a = _run(
        [(m[0] - 1, m[0] + 0.5, m[0] + 1), (m[1] + 0.1, m[1] + 0.3, m[1] + 2), (m[5] - 2, m[5] - 1, m[5])],
        T0,
        [0, 1, 5],
    )
    store_forecast(store, site, "site", run_a, T0, "hand")
    # run B issued 30 min later: interval 5 again (horizon 0 h) and interval 9 (horizon 1 h)
    issued_b = T0 + pd.Timedelta(minutes=30)
    run_b = _run([(m[5] - 0.2, m[5] + 0.2, m[5] + 0.4), (m[9] - 3, m[9] - 0.6, m[9] + 1)], T0, [5, 9])
    store_forecast(store, site, "site", run_b, issued_b, "hand")
    # another target must not count
    store_forecast(store, site, "connection:T1", run_a + 100, T0, "hand")
    # by hand: errors (median - measured) and inside-band per belief
    # A0: +0.5 in (day 20, h0); A1: +0.3 out (day 21, h0); A5: -1 in (day 21, h1)
    # B5: +0.2 in (day 21, h0); B9: -0.6 in (day 21, h1)
    return {
        "overall": {"n": 5, "mae": 2.6 / 5, "bias": -0.6 / 5, "coverage": 0.8},
        "by_day": {
            "2026-01-20": {"n": 1, "mae": 0.5, "bias": 0.5, "coverage": 1.0},
            "2026-01-21": {"n": 4, "mae": 2.1 / 4, "bias": -1.1 / 4, "coverage": 0.75},
        },
        "by_horizon": {
            0: {"n": 3, "mae": 1.0 / 3, "bias": 1.0 / 3, "coverage": 2 / 3},
            1: {"n": 2, "mae": 0.8, "bias": -0.8, "coverage": 1.0},
        },
    }


def test_accuracy_equals_a_hand_computation(store: Engine) -> None:
    fill(store, small_site())
    expected = store_hand_case(store)
    result = forecast_accuracy(store, "q1", "site", T0, T0 + pd.Timedelta(hours=3))
    assert result.runs == 2
    assert result.overall.to_dict() == pytest.approx(expected["overall"])
    assert list(result.by_day.index) == list(expected["by_day"])
    for day, row in expected["by_day"].items():
        assert result.by_day.loc[day].to_dict() == pytest.approx(row)
    assert list(result.by_horizon.index) == list(expected["by_horizon"])
    for h, row in expected["by_horizon"].items():
        assert result.by_horizon.loc[h].to_dict() == pytest.approx(row)


def test_accuracy_refuses_a_target_without_measurement(store: Engine) -> None:
    fill(store, small_site())
    with pytest.raises(InputError, match="measured counterpart"):
        forecast_accuracy(store, "q1", "pv:PV-H1", T0, T0 + pd.Timedelta(hours=3))
    with pytest.raises(InputError, match="measured household load"):
        forecast_accuracy(store, "q1", "connection:T9", T0, T0 + pd.Timedelta(hours=3))


def test_cli_accuracy_json_and_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = open_store(url)
    fill(engine, small_site())
    expected = store_hand_case(engine)
    engine.dispose()
    period = ["--start", "2026-01-20T23:45:00+01:00", "--end", "2026-01-21T01:45:00Z"]
    result = CliRunner().invoke(app, ["accuracy", "--site", "q1", "--db", url, *period, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["runs"] == 2 and body["start"] == T0.isoformat()
    assert body["overall"] == pytest.approx(expected["overall"])
    assert {d.pop("day"): d for d in body["by_day"]} == {k: pytest.approx(v) for k, v in expected["by_day"].items()}
    by_horizon = {h.pop("horizon_h"): h for h in body["by_horizon"]}
    assert by_horizon == {k: pytest.approx(v) for k, v in expected["by_horizon"].items()}
    tables = CliRunner().invoke(app, ["accuracy", "--site", "q1", "--db", url, *period])
    assert tables.exit_code == 0, tables.output
    assert "2026-01-21" in tables.output and "0.520" in tables.output  # overall MAE 2.6 / 5
    naive = CliRunner().invoke(
        app,
        ["accuracy", "--site", "q1", "--db", url, "--start", "2026-01-20T23:45:00", "--end", "2026-01-21T01:45:00Z"],
    )
    assert naive.exit_code == 2
    assert "--start" in naive.output and "needs a UTC offset" in naive.output
