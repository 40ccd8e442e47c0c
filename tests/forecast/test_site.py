"""Site mode on a small synthetic store: measured aggregate, backtest, stored run, planner inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from grid.domain import Site, site_from_dict
from grid.forecast.backtest import backtest
from grid.forecast.cli import app
from grid.forecast.meters import CANDIDATES
from grid.forecast.site import (
    GLOBAL_HOLDOUT_DAYS,
    forecast_inputs,
    global_model_path,
    measured_aggregate,
    open_store,
    run_site,
    stored_global_model,
    train_global_model,
)
from grid.forecast.weather import Weather
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from grid.store.forecasts import load_forecast
from grid.store.sites import register_site

from .conftest import quarter_hours, weekly_pattern_kw

DAYS = 22
START = "2026-01-12T00:00:00+01:00"
ANNUAL = {"H1": 3000.0, "H2": 4000.0, "H3": 2000.0}


def small_site() -> Site:
    return site_from_dict(
        {
            "site": {"id": "q1", "timezone": "Europe/Berlin"},
            "connections": [{"id": "T1", "rated_kva": 100}, {"id": "T2", "rated_kva": 100}],
            "households": [
                {"id": h, "connection": "T1" if h != "H3" else "T2", "meter_id": f"M-{h}", "annual_kwh": kwh}
                for h, kwh in ANNUAL.items()
            ],
            "pv_arrays": [{"id": "PV-H1", "connection": "T1", "household": "H1", "kwp": 6.0}],
            "heat_pumps": [{"id": "HP-H3", "connection": "T2", "electric_kw": 4.0, "annual_heat_kwh": 9000}],
        }
    )


def household_kw(index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    shape = weekly_pattern_kw(index).to_numpy()
    return {h: shape * kwh / 8760 / 1.5 * rng.uniform(0.9, 1.1, len(index)) for h, kwh in ANNUAL.items()}


def fill(engine: Engine, site: Site, days: int = DAYS) -> pd.DatetimeIndex:
    """Register `site` and ingest `days` days of registers (kWh) and temperatures."""
    register_site(engine, site)
    index = quarter_hours(START, days)
    stamps = index.append(pd.DatetimeIndex([index[-1] + pd.Timedelta(minutes=15)]))
    texts = [t.isoformat() for t in stamps]
    rows: list[dict[str, object]] = []

    def register(meter: str, obis: str, kw: np.ndarray) -> None:
        cumulative = 1000.0 + np.concatenate([[0.0], np.cumsum(kw * 0.25)])
        rows.extend(
            {"meter_id": meter, "obis": obis, "timestamp": t, "value": v, "unit": "kWh"}
            for t, v in zip(texts, cumulative, strict=True)
        )

    for h, kw in household_kw(index).items():
        register(f"M-{h}", "1-0:1.8.0", kw)
        register(f"M-{h}", "1-0:2.8.0", np.zeros(len(index)))
    pv = np.clip(np.sin((index.hour.to_numpy() - 7) / 10 * np.pi), 0, None) * 2.0
    register("PV-H1", "1-0:2.8.0", pv)
    temp = 3 + 4 * np.sin(np.arange(len(stamps)) / 96 * 2 * np.pi)
    rows.extend(
        {"sensor": "temp_degc", "timestamp": t, "value": v, "unit": "degC"} for t, v in zip(texts, temp, strict=True)
    )
    for i, row in enumerate(rows):
        row["line"] = i + 2
    report = ingest(
        engine,
        "q1",
        records_frame(rows),
        Source("test", "synthetic"),
        IngestOptions(now=pd.Timestamp("2026-06-01T00:00Z")),
    )
    assert report.rejected == []
    return index


@pytest.fixture
def filled(store: Engine) -> tuple[Engine, Site, pd.DatetimeIndex]:
    site = small_site()
    return store, site, fill(store, site)


def test_global_model_trained_stored_and_chosen_from(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daily training job's function: the site's global LightGBM model trains on the history
    up to 14 days before the end (those days stay out of sample), is stored, and the next run
    scores it among the candidates on exactly those days; the forecasts stay reconciled."""
    monkeypatch.setenv("GRID_MODEL_DIR", str(tmp_path))
    site = small_site()
    index = fill(store, site, days=36)
    origin = index[-1] + pd.Timedelta(minutes=15)
    model = train_global_model(store, "q1")
    assert model is not None and global_model_path("q1").is_file()
    assert model.trained_until == origin - pd.Timedelta(days=GLOBAL_HOLDOUT_DAYS) - pd.Timedelta(minutes=15)
    assert set(model.series_end) == {"site", "connection:T1", "connection:T2"}
    loaded = stored_global_model("q1", origin)
    assert loaded is not None and loaded.trained_until == model.trained_until
    assert stored_global_model("q1", model.trained_until) is None  # not from the future of an origin
    # and the one trained up to the end, which forecasts the horizon while the older one scores
    latest = stored_global_model("q1", origin, latest=True)
    assert latest is not None and latest.trained_until == origin - pd.Timedelta(minutes=15)
    summary = run_site(store, "q1", hours=24, model=site, store=False)
    assert any("trained up to the origin forecasts" in n for n in summary.notes)
    load_targets = ("site", "connection:T1", "connection:T2")
    assert all(summary.forecasts[(t, "power_kw")].model in CANDIDATES for t in load_targets)
    assert not any("global model not scored" in n for n in summary.notes)
    whole = summary.forecasts[("site", "power_kw")].median
    parts = [summary.forecasts[(f"connection:{c}", "power_kw")].median for c in ("T1", "T2")]
    assert (whole.to_numpy() == (parts[0] + parts[1]).to_numpy()).all()


def test_measured_aggregate_and_site_backtest(filled: tuple[Engine, Site, pd.DatetimeIndex]) -> None:
    engine, _, index = filled
    total = measured_aggregate(engine, "q1")
    expected = sum(household_kw(index).values())
    np.testing.assert_allclose(total.reindex(index).to_numpy(), expected, rtol=1e-6, atol=2e-3)
    result = backtest(total, days=3, horizon_h=24)
    assert result.metrics["n_points"] == 3 * 96
    assert result.metrics["n_origins"] == 3 and np.isfinite(result.metrics["mae_ratio"])


def test_run_stores_forecasts_and_feeds_the_planner(filled: tuple[Engine, Site, pd.DatetimeIndex]) -> None:
    engine, site, index = filled
    origin = index[-1] + pd.Timedelta(minutes=15)
    summary = run_site(engine, "q1", hours=24, model=site)
    assert summary.issued_at == origin
    targets = {(r.target, r.quantity) for r in summary.rows}
    assert {("site", "power_kw"), ("connection:T1", "power_kw"), ("connection:T2", "power_kw")} <= targets
    assert {("pv:PV-H1", "kw_per_kwp"), ("heat:HP-H3", "heat_kw"), ("weather", "temp_degc")} <= targets
    assert any("persistence" in n for n in summary.notes)
    end = origin + pd.Timedelta(hours=24)
    stored = load_forecast(engine, "q1", "connection:T1", origin, end, as_of=origin)
    assert stored.notna().all().all() and (stored.diff(axis=1).iloc[:, 1:] >= 0).all().all()
    # reconciled: the site's median is the sum of the connections' medians (stored as floats)
    parts = [load_forecast(engine, "q1", f"connection:{c}", origin, end, as_of=origin)[0.5] for c in ("T1", "T2")]
    whole = load_forecast(engine, "q1", "site", origin, end, as_of=origin)[0.5]
    np.testing.assert_allclose(whole.to_numpy(), (parts[0] + parts[1]).to_numpy(), rtol=1e-12, atol=1e-12)
    site_fc = summary.forecasts[("site", "power_kw")].median
    conns = [summary.forecasts[(f"connection:{c}", "power_kw")].median for c in ("T1", "T2")]
    assert (site_fc.to_numpy() == (conns[0] + conns[1]).to_numpy()).all()

    inputs = forecast_inputs(site, engine, origin, 24, as_of=origin)
    assert list(inputs.base_load_kw.columns) == ["H1", "H2", "H3"]
    assert len(inputs.index) == 96 and str(inputs.index.tz) == "UTC"
    # households of T1 share its forecast by annual energy: H2 / H1 = 4000 / 3000
    np.testing.assert_allclose(inputs.base_load_kw["H2"] / inputs.base_load_kw["H1"], 4000 / 3000)
    np.testing.assert_allclose(inputs.base_load_kw[["H1", "H2"]].sum(axis=1), stored[0.5].to_numpy(), rtol=1e-9)
    assert inputs.sources["base_load:T1"] == "stored forecast"
    # the planning reserve under T1's limit is the stored band above the median (q90 - q50)
    # with T1's PV forecast's band below the median (less PV = more import), independent errors
    assert inputs.reserve_kw is not None
    assert inputs.sources["reserve:T1"].startswith("forecast bands (load above its median and PV below its median")
    load_band = (stored[0.9] - stored[0.5]).to_numpy()
    pv_band = np.zeros(len(load_band))
    for arr in (a for a in site.pv_arrays if a.connection == "T1"):
        pv = load_forecast(engine, "q1", f"pv:{arr.id}", origin, end, as_of=origin, quantity="kw_per_kwp")
        pv_band += (pv[0.5] - pv[0.1]).abs().to_numpy() * arr.kwp
    expected = np.sqrt(load_band**2 + pv_band**2) * 2.0 / 1.2816  # from the 90 % band to z = 2
    np.testing.assert_allclose(inputs.reserve_kw["T1"], expected, rtol=1e-9)
    assert pv_band.max() > 0  # the PV part is really there (daylight in the horizon)
    assert (inputs.reserve_kw["T1"] > 0).any()
    assert (inputs.heat_demand_kw["HP-H3"] > 0).all()
    assert inputs.pv_kw_per_kwp["PV-H1"].max() > 0
    # as of before the run, nothing is stored: made on the spot from the store instead
    earlier = forecast_inputs(site, engine, origin, 24, as_of=origin - pd.Timedelta(hours=1))
    assert earlier.sources["base_load:T1"] == "forecast made now"


def test_inputs_without_history_use_household_profiles(store: Engine) -> None:
    site = small_site()
    index = quarter_hours("2026-02-02T00:00:00+01:00", 1)
    weather = Weather(pd.Series(0.0, index=index))
    inputs = forecast_inputs(site, store, index[0], 24, weather=weather)
    assert inputs.sources["base_load:T1"].startswith("cold start")
    # a profile has no band: a reserve, if any, is only the PV forecast's
    assert "load" not in inputs.sources.get("reserve:T1", "PV below its median")
    daily_kwh = inputs.base_load_kw.sum() * 0.25
    assert 0.5 < daily_kwh["H2"] / (4000 / 365) < 1.5


def test_cli_backtest_site_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = open_store(url)
    fill(engine, small_site())
    engine.dispose()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--site",
            "q1",
            "--db",
            url,
            "--days",
            "3",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "m.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "backtest-q1-household_load.png").exists()
    assert (out / "backtest-q1-household_load.csv").exists()
    run = CliRunner().invoke(app, ["run", "--site", "q1", "--db", url, "--hours", "24"])
    assert run.exit_code == 0, run.output
    assert "connection:T2" in run.output
    # 22 days: two weeks stay out of training, the first two of the rest only serve as lags
    monkeypatch.setenv("GRID_MODEL_DIR", str(tmp_path / "models"))
    train = CliRunner().invoke(app, ["train", "--site", "q1", "--db", url])
    assert train.exit_code == 1 and "too little measured load" in train.output, train.output
    assert not (tmp_path / "models").exists()


def test_a_late_reading_changes_the_next_run_as_without_kept_sums(
    filled: tuple[Engine, Site, pd.DatetimeIndex],
) -> None:
    """The measured history is summed incrementally between runs (grid.store.readback keeps the
    sums per engine): a register revised deep in the history after a run changes the next run
    exactly as a run that sums everything afresh."""
    from grid.store import readback

    engine, site, index = filled
    origin = index[-1] + pd.Timedelta(minutes=15)
    before = run_site(engine, "q1", as_of=origin, hours=24, model=site, store=False)
    # the register of H1 at the start of day 18 read 0.5 kWh too low: the two intervals around it change
    at = index[18 * 96]
    kw = household_kw(index)["H1"]
    register = 1000.0 + float(np.sum(kw[: 18 * 96] * 0.25))
    late = records_frame(
        [
            {
                "line": 2,
                "meter_id": "M-H1",
                "obis": "1-0:1.8.0",
                "timestamp": at.isoformat(),
                "value": register + 0.5,
                "unit": "kWh",
            }
        ]
    )
    report = ingest(engine, "q1", late, Source("test", "late"), IngestOptions(now=pd.Timestamp("2026-06-01T00:00Z")))
    assert report.revised == 1
    kept = run_site(engine, "q1", as_of=origin, hours=24, model=site, store=False)
    readback._SUMS.clear()
    fresh = run_site(engine, "q1", as_of=origin, hours=24, model=site, store=False)
    assert kept.forecasts.keys() == fresh.forecasts.keys()
    changed = False
    for key, forecast in fresh.forecasts.items():
        pd.testing.assert_frame_equal(kept.forecasts[key].quantiles, forecast.quantiles, check_exact=True)
        changed |= not forecast.quantiles.equals(before.forecasts[key].quantiles)
    assert changed  # the late reading did change the forecasts
