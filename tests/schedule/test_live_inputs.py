"""A run plans from what the store holds at its start: measured states, the EV sessions of the
session events, published prices and weather, and the grid operator's limit orders (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.domain import load_site
from grid.forecast.pv import PVForecaster
from grid.forecast.weather import Weather
from grid.ingest.report import Source
from grid.ingest.sessions import create_session, plug_out
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.schedule.inputs import forecast_provider, planning_inputs
from grid.schedule.performance import evaluate_intervals
from grid.schedule.runner import PlanningConfig, PlanningService
from grid.store import live
from grid.store import plans as plan_store
from grid.store.sites import register_site
from tests.api.kit import HOURS, Clock

CONFIG = PlanningConfig(horizon_hours=HOURS, time_limit_s=20)
MIN = pd.Timedelta(minutes=1)


def _body(store: Engine, svc: PlanningService, clock: Clock) -> dict:
    result = svc.run("demo", clock())
    assert result.status.startswith("optimal"), result.message
    return plan_store.plan_body(store, result.plan_id)


@pytest.fixture
def registered(store: Engine, sites: dict[str, Path]) -> PlanningService:
    register_site(store, load_site(sites["demo"]))
    return PlanningService(store, {"demo": sites["demo"]}, CONFIG, inputs_provider=forecast_provider(store))


def test_states_sessions_prices_and_orders_come_from_the_store(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    now = pd.Timestamp(clock())  # 01:07; the run plans from 01:00
    period = now.floor("15min")
    _car(store, "car-1", now)
    live.add_order(store, "demo", "T2", period + 15 * MIN, period + 45 * MIN, 15.0, None, "congestion", now)
    items = payload_items({"telemetry": [{"asset_id": "CB-T2", "ts": (now - 3 * MIN).isoformat(), "soc_kwh": 24.8}]})
    report = ingest_telemetry(store, "demo", items, Source("api", "test"), now)
    assert report.accepted == 1, report
    starts = pd.date_range(period - pd.Timedelta(hours=1), periods=8, freq="15min", tz="UTC")
    prices = pd.DataFrame({"start": starts, "end": starts + 15 * MIN, "value": [0.31] * 8})
    live.store_prices(store, "demo", prices, now - pd.Timedelta(hours=2), "test", now)

    body = _body(store, registered, clock)
    sessions = body["assets"]["EV-H013"]["sessions"]
    assert list(sessions) == ["car-1"] and sessions["car-1"]["delivered_kwh"] == pytest.approx(8.0, abs=1e-4)
    assert body["inputs"]["ev_sessions"].startswith("store (session events): 1 in the horizon")
    assert [o["connection"] for o in body["limit_orders"]] == ["T2"]
    limits = body["connections"]["T2"]["limit_import_kw"]
    assert limits[:4] == pytest.approx([23.75, 15.0, 15.0, 23.75])
    assert all(imp <= 15.0 + 1e-6 for imp in body["connections"]["T2"]["import_kw"][1:3]) or any(
        v["kind"] == "import_limit_exceeded" and v["step"] in (1, 2) for v in body["violations"]
    )
    state = body["assets"]["CB-T2"]["initial_state"]
    assert (state["source"], state["value"]) == ("measured", 24.8)
    assert body["assets"]["CB-T2"]["soc_kwh"][0] == pytest.approx(24.8)
    # 01:00-01:45 published; no earlier day to forecast the rest from: the site's file fills in
    assert body["inputs"]["prices"].startswith("store: 8 site input files, 4 published interval(s)")


def test_a_plug_out_and_a_cancelled_order_stop_applying(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    now = pd.Timestamp(clock())
    period = now.floor("15min")
    _car(store, "car-2", now)
    order = live.add_order(store, "demo", "T1", period, period + pd.Timedelta(hours=2), 10.0, None, "§14a", now)
    first = _body(store, registered, clock)
    assert "car-2" in first["assets"]["EV-H013"]["sessions"]
    assert first["connections"]["T1"]["limit_import_kw"][0] == 10.0
    clock.advance(15)
    later = pd.Timestamp(clock())
    # the car left at 01:14, before the run's first interval (01:15): it is in no plan any more
    plug_out(store, "demo", "car-2", {"at": (later.floor("15min") - MIN).isoformat()}, "api", later)
    live.cancel_order(store, "demo", order.id, later)
    second = _body(store, registered, clock)
    assert second["assets"]["EV-H013"]["sessions"] == {}
    assert second["limit_orders"] == [] and max(second["connections"]["T1"]["limit_import_kw"]) == 38.0


def test_an_unregistered_site_plans_its_file_and_says_so(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    svc = PlanningService(store, {"demo": sites["demo"]}, CONFIG)
    body = _body(store, svc, clock)
    assert body["inputs"]["ev_sessions"].startswith("site file (the site is not registered in the store)")
    assert body["limit_orders"] == []
    assert {s["source"] for a, s in ((a, v.get("initial_state")) for a, v in body["assets"].items()) if s} == {
        "assumed"
    }


def _car(store: Engine, sid: str, now: pd.Timestamp, need_kwh: float = 8.0) -> None:
    create_session(
        store,
        "demo",
        {
            "session_id": sid,
            "charger": "EV-H013",
            "arrival": (now - 5 * MIN).isoformat(),
            "departure": (now + 120 * MIN).isoformat(),
            "energy_needed_kwh": need_kwh,
        },
        "api",
        now,
    )


def test_a_charging_car_needs_only_what_it_has_not_got(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    """Run 1 plans the car's 8 kWh. Run 2 (15 min later, no charger telemetry) starts from what
    run 1 delivered by then (estimated); run 3 with the charger's measured power since the
    arrival starts from that (measured)."""
    now = pd.Timestamp(clock())
    _car(store, "car-3", now)
    first = _body(store, registered, clock)
    planned = first["assets"]["EV-H013"]["sessions"]["car-3"]
    assert planned["need_state"] == {
        "requested_kwh": 8.0,
        "delivered_kwh": 0.0,
        "remaining_kwh": 8.0,
        "source": "assumed",
        "at": first["start"],
    }
    clock.advance(15)
    second = _body(store, registered, clock)
    state = second["assets"]["EV-H013"]["sessions"]["car-3"]["need_state"]
    by_then = planned["energy_kwh"][1] - planned["energy_kwh"][0]  # run 1's energy into the car by 01:15
    assert state["source"] == "estimated" and state["delivered_kwh"] == pytest.approx(by_then, abs=1e-6)
    assert state["remaining_kwh"] == pytest.approx(8.0 - by_then, abs=1e-6)
    assert second["assets"]["EV-H013"]["sessions"]["car-3"]["needed_kwh"] == pytest.approx(8.0 - by_then, abs=1e-6)
    # the charger reports 4 kW for the two intervals since the arrival (01:00-01:30)
    later = pd.Timestamp(clock.advance(15))
    t0 = now.floor("15min")
    rows = [{"asset_id": "EV-H013", "ts": (t0 + k * 15 * MIN + MIN).isoformat(), "power_kw": 4.0} for k in range(2)]
    assert ingest_telemetry(store, "demo", payload_items({"telemetry": rows}), Source("api", "t"), later).accepted == 2
    third = _body(store, registered, clock)
    state = third["assets"]["EV-H013"]["sessions"]["car-3"]["need_state"]
    assert (state["source"], state["delivered_kwh"], state["remaining_kwh"]) == ("measured", 2.0, 6.0)


def test_a_car_that_leaves_early_is_reported_with_the_energy_it_missed(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    now = pd.Timestamp(clock())
    _car(store, "car-4", now, need_kwh=20.0)
    _body(store, registered, clock)
    later = pd.Timestamp(clock.advance(15))
    plug_out(store, "demo", "car-4", {"at": (later.floor("15min") - MIN).isoformat()}, "api", later)
    body = _body(store, registered, clock)
    [ended] = body["ev_sessions_ended"]
    assert ended["session_id"] == "car-4" and ended["source"] == "estimated"
    assert ended["requested_kwh"] == 20.0 and 0.0 < ended["missed_kwh"] < 20.0
    assert ended["delivered_kwh"] + ended["missed_kwh"] == pytest.approx(20.0)
    assert any(w.startswith("car-4 at EV-H013 left at") and "not delivered" in w for w in body["warnings"])


def test_an_arriving_car_reuses_the_kept_model(store: Engine, registered: PlanningService, clock: Clock) -> None:
    _body(store, registered, clock)  # builds the model: no car yet
    clock.advance(15)
    _car(store, "car-5", pd.Timestamp(clock()))
    body = _body(store, registered, clock)
    assert "car-5" in body["assets"]["EV-H013"]["sessions"]
    assert body["solver"]["warm_start"] is True


def test_a_plan_says_how_well_the_last_hour_was_followed(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    """After an hour of plans and measurements the plan carries the evaluated last hour; a site
    without evaluated intervals says so with zeros and no share (never a made-up number)."""
    first = _body(store, registered, clock)
    assert first["followed"]["evaluated_intervals"] == 0 and first["followed"]["mean_followed_share"] is None
    now = pd.Timestamp(clock())
    t0 = now.floor("15min")
    rows = [
        {
            "asset_id": "CB-T2",
            "ts": (t0 + k * 15 * MIN + MIN).isoformat(),
            "power_kw": first["assets"]["CB-T2"]["power_kw"][k],
        }
        for k in range(4)
    ]
    # BAT-H008 reports 1 kW away from its set-point every interval: it followed none of them
    planned = first["assets"]["BAT-H008"]["power_kw"]
    rows += [
        {
            "asset_id": "BAT-H008",
            "ts": (t0 + k * 15 * MIN + MIN).isoformat(),
            "power_kw": planned[k] + 1.0 if planned[k] <= 0 else planned[k] - 1.0,
        }
        for k in range(4)
    ]
    clock.advance(60)
    later = pd.Timestamp(clock())
    assert ingest_telemetry(store, "demo", payload_items({"telemetry": rows}), Source("api", "t"), later).accepted == 8
    evaluate_intervals(store, "demo", t0, t0 + 60 * MIN, later)
    body = _body(store, registered, clock)
    followed = body["followed"]
    assert followed["evaluated_intervals"] == 4 and followed["assets_measured"] >= 1
    assert followed["mean_followed_share"] is not None and "CB-T2" not in followed["not_followed"]
    assert "BAT-H008" in followed["not_followed"]  # a share of 0 is "not followed", not "unknown"


def test_published_cloud_cover_becomes_the_pv_forecast(store: Engine, sites: dict[str, Path]) -> None:
    """Cloud cover published without GHI: PV is forecast from it (clear-sky GHI x (35 + 65 x
    (1 - cover)) %), the same numbers as the forecaster given that cloud cover directly."""
    site = load_site(sites["demo"])
    register_site(store, site)
    start = pd.Timestamp("2026-01-14T08:00:00Z")
    index = pd.date_range(start, periods=12, freq="15min")
    cover = pd.DataFrame({"start": index, "end": index + 15 * MIN, "value": [100.0] * len(index)})
    live.store_weather(store, "demo", "cloud_cover_pct", cover, start - pd.Timedelta(hours=6), "test", start)
    after = planning_inputs(site, store, start, 3.0)
    expected = PVForecaster(site.site.latitude, site.site.longitude).forecast(
        index, site.pv_arrays, Weather(after.temp_degc, cloud_cover_pct=pd.Series(100.0, index=index))
    )
    for arr in site.pv_arrays:
        np.testing.assert_allclose(after.pv_kw_per_kwp[arr.id].to_numpy(), expected[arr.id].median.to_numpy())
    assert after.pv_kw_per_kwp.to_numpy().max() > 0.01  # daylight: the test compares real numbers


def test_an_order_stored_by_another_writer_replans_at_the_next_look(
    store: Engine, registered: PlanningService, clock: Clock
) -> None:
    """``grid limits add`` (or another instance) writes the order to the store only: the service's
    order watcher re-plans the site at its next look, once; a cancellation re-plans it again."""
    from grid.schedule import scheduler as sched

    sched.make_scheduler(registered, run_now=False, clock=clock)  # registers the service; not started
    try:
        assert sched.watch_orders() == []  # nothing changed since the scheduler was made
        now = pd.Timestamp(clock())
        period = now.floor("15min")
        order = live.add_order(store, "demo", "T2", period, period + 30 * MIN, 12.0, None, "§14a", now)
        assert sched.watch_orders() == ["demo"]
        latest = plan_store.latest_good(store, "demo")
        assert latest is not None
        body = plan_store.plan_body(store, latest.plan_id)
        assert body["connections"]["T2"]["limit_import_kw"][:2] == pytest.approx([12.0, 12.0])
        assert latest.trigger == "limit_order"
        assert sched.watch_orders() == []  # seen: no second run
        live.cancel_order(store, "demo", order.id, now + MIN)
        assert sched.watch_orders() == ["demo"]
        body = plan_store.plan_body(store, plan_store.latest_good(store, "demo").plan_id)  # type: ignore[union-attr]
        assert body["connections"]["T2"]["limit_import_kw"][0] > 12.0
    finally:
        sched._service = None


def test_beyond_the_published_weather_the_forecast_runs_temperature_then_the_file(
    store: Engine, sites: dict[str, Path]
) -> None:
    """3 h horizon: the first hour published (2.5 degC), the second from the forecast run's stored
    temperature forecast (-4 degC), the last hour from the site's file; the source counts each."""
    from grid.store.forecasts import store_forecast

    site = load_site(sites["demo"])
    register_site(store, site)
    start = pd.Timestamp("2026-01-14T08:00:00Z")
    index = pd.date_range(start, periods=12, freq="15min")
    published = pd.DataFrame({"start": index[:4], "end": index[:4] + 15 * MIN, "value": [2.5] * 4})
    live.store_weather(store, "demo", "temp_degc", published, start - pd.Timedelta(hours=6), "test", start)
    run = pd.DataFrame({0.5: [-4.0] * 8}, index=index[:8])  # covers hours 1-2; the published hour wins
    store_forecast(store, "demo", "weather", run, start - pd.Timedelta(hours=1), "input", "temp_degc")
    inputs = planning_inputs(site, store, start, 3.0)
    file_temp = load_inputs_file_temp(site, index)
    np.testing.assert_allclose(inputs.temp_degc.to_numpy()[:4], 2.5)
    np.testing.assert_allclose(inputs.temp_degc.to_numpy()[4:8], -4.0)
    np.testing.assert_allclose(inputs.temp_degc.to_numpy()[8:], file_temp[8:])
    assert inputs.sources["weather"] == (
        "store: 4 interval(s) published, 4 from the forecast run's temperature forecast, 4 from the site input files"
    )


def load_inputs_file_temp(site: object, index: pd.DatetimeIndex) -> np.ndarray:
    from grid.series import load_inputs

    return load_inputs(site).window(index).temp_degc.to_numpy()  # type: ignore[arg-type]
