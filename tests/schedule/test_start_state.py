"""Each run starts every battery and heat store where it is: measured, else the previous plan's
trajectory at the start (``estimated``), else the site file (``assumed``), and says which."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.domain import Site, load_site, site_from_dict
from grid.schedule.runner import PlanningConfig, PlanningService
from grid.schedule.state import Measured, max_age_from_env, resolve_start_state
from grid.store import plans as plan_store
from tests.api.kit import HOURS, Clock

START = pd.Timestamp("2026-01-14T18:00Z")
SITE = {
    "site": {"id": "st", "resolution_min": 15},
    "connections": [{"id": "T0", "rated_kva": 100.0}],
    "batteries": [
        {"id": "b", "connection": "T0", "capacity_kwh": 10.0, "charge_kw": 5.0, "discharge_kw": 5.0, "soc_min": 0.1}
    ],
    "heat_pumps": [{"id": "hp", "connection": "T0", "electric_kw": 3.0, "store_kwh": 20.0, "initial_store": 0.25}],
}


def _plan(asset: str, soc: list[float]) -> dict[str, Any]:
    """A previous plan from 17:45 with 15-min steps and `asset`'s trajectory `soc` (len T + 1)."""
    t0 = pd.Timestamp("2026-01-14T17:45Z")
    stamps = [(t0 + pd.Timedelta(minutes=15 * k)).isoformat() for k in range(len(soc) - 1)]
    end = (t0 + pd.Timedelta(minutes=15 * (len(soc) - 1))).isoformat()
    return {"status": "optimal", "intervals": stamps, "end": end, "assets": {asset: {"soc_kwh": soc}}}


def test_a_fresh_measurement_is_where_the_plan_starts() -> None:
    site = site_from_dict(SITE)
    measured = {"b": Measured(8.0, START - pd.Timedelta(minutes=5))}
    out = resolve_start_state(site, START, measured, None)
    assert out.site.batteries[0].initial_soc == pytest.approx(0.8)
    assert out.states["b"].as_dict() == {
        "value": 8.0,
        "unit": "kWh",
        "source": "measured",
        "at": "2026-01-14T17:55:00+00:00",
    }
    # the heat store has no measurement and no plan: the site file's value, and a warning says so
    assert out.states["hp"].source == "assumed" and out.states["hp"].value == pytest.approx(5.0)
    assert out.site.heat_pumps[0].initial_store == 0.25
    assert [w.split(":")[0] for w in out.warnings] == ["hp"]
    assert "assumed from the site file" in out.warnings[0]


def test_without_a_fresh_measurement_the_previous_plan_is_read_at_the_start() -> None:
    site = site_from_dict(SITE)
    old = {"b": Measured(9.0, START - pd.Timedelta(minutes=31))}  # older than 30 min: not used
    previous = _plan("b", [6.0, 4.0, 3.0])  # 17:45 -> 6, 18:00 -> 4, 18:15 -> 3
    out = resolve_start_state(site, START + pd.Timedelta(minutes=5), old, previous)
    state = out.states["b"]
    assert state.source == "estimated" and state.value == pytest.approx(4.0 - 1.0 / 3)  # linear in between
    assert out.site.batteries[0].initial_soc == pytest.approx((4.0 - 1.0 / 3) / 10.0)
    assert any(w.startswith("b: start state estimated") and "17:29" in w for w in out.warnings)


def test_a_plan_that_does_not_cover_the_start_is_not_an_estimate() -> None:
    site = site_from_dict(SITE)
    previous = _plan("b", [6.0, 4.0, 3.0])  # ends 18:30
    out = resolve_start_state(site, START + pd.Timedelta(minutes=45), {}, previous)
    assert out.states["b"].source == "assumed"
    assert out.site.batteries[0].initial_soc == 0.5


def test_a_measurement_outside_the_usable_range_is_planned_from_the_bound_and_said() -> None:
    site = site_from_dict(SITE)
    out = resolve_start_state(site, START, {"b": Measured(0.4, START)}, None)
    assert out.states["b"].value == 0.4 and out.states["b"].source == "measured"
    assert out.site.batteries[0].initial_soc == pytest.approx(0.1)
    assert any("measured 0.400 kWh is outside the usable 1.000..10.000 kWh" in w for w in out.warnings)


def test_a_measurement_within_the_running_interval_counts_a_later_one_does_not() -> None:
    site = site_from_dict(SITE)
    now = START + pd.Timedelta(minutes=7)
    out = resolve_start_state(site, START, {"b": Measured(8.0, START + pd.Timedelta(minutes=5))}, None, now=now)
    assert out.states["b"].source == "measured" and out.warnings == [out.warnings[0]]
    assert out.warnings[0].startswith("hp:")


def test_a_measurement_after_the_run_is_not_used() -> None:
    site = site_from_dict(SITE)
    out = resolve_start_state(site, START, {"b": Measured(8.0, START + pd.Timedelta(minutes=1))}, None)
    assert out.states["b"].source == "assumed"
    assert "later than the run" in out.warnings[0]


def test_the_maximum_age_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRID_STATE_MAX_AGE_MIN", "90")
    assert max_age_from_env() == dt.timedelta(minutes=90)
    assert PlanningConfig().state_max_age == dt.timedelta(minutes=90)
    monkeypatch.setenv("GRID_STATE_MAX_AGE_MIN", "soon")
    with pytest.raises(ValueError, match="GRID_STATE_MAX_AGE_MIN='soon'"):
        max_age_from_env()


def _battery(site: Site) -> tuple[str, float]:
    bat = site.batteries[0]
    return bat.id, bat.capacity_kwh


def test_runs_start_from_the_measurement_then_from_their_own_trajectory(
    store: Engine, sites: dict[str, Path], clock: Clock
) -> None:
    """Run 1: the first battery is measured at 80 %: its plan starts there. Run 2 a quarter-hour
    later without a new measurement: it starts where run 1 planned it to be, and says
    ``estimated``."""
    bat_id, cap = _battery(load_site(sites["demo"]))
    readings: dict[str, Measured] = {}
    svc = PlanningService(
        store,
        {"demo": sites["demo"]},
        PlanningConfig(horizon_hours=HOURS, time_limit_s=20),
        state_source=lambda site, at: readings,
    )
    readings[bat_id] = Measured(0.8 * cap, pd.Timestamp(clock()) - pd.Timedelta(minutes=2))
    first = svc.run("demo", clock())
    assert first.status.startswith("optimal"), first.message
    body = plan_store.plan_body(store, first.plan_id)
    asset = body["assets"][bat_id]
    assert asset["initial_state"]["source"] == "measured"
    assert asset["soc_kwh"][0] == pytest.approx(0.8 * cap, abs=1e-6)
    readings.clear()
    clock.advance(15)
    second = svc.run("demo", clock())
    body2 = plan_store.plan_body(store, second.plan_id)
    state = body2["assets"][bat_id]["initial_state"]
    assert state["source"] == "estimated" and state["at"] == body2["start"]
    assert state["value"] == pytest.approx(asset["soc_kwh"][1], abs=1e-5)  # run 1's state at run 2's start
    assert body2["assets"][bat_id]["soc_kwh"][0] == pytest.approx(asset["soc_kwh"][1], abs=1e-5)
    assert any(w.startswith(f"{bat_id}: start state estimated") for w in body2["warnings"])
