"""Hard limits hold: on a `hard_limits: true` connection the set-points fit the limit and every
shortfall lands on the slack of the asset that falls short, never on load that is not there.

One hand case per slack kind; dt = 1 h, so kW and kWh per step are the same number."""

from __future__ import annotations

from typing import Any

import pytest

from models.tables import build_tables
from tests.models.invariants import check_plan
from tests.models.sites import at, household, make_inputs, make_site, run


def hard(limit_kw: float, export_kw: float | None = None) -> list[dict[str, Any]]:
    conn: dict[str, Any] = {"id": "T1", "rated_kva": limit_kw, "power_factor": 1.0, "hard_limits": True}
    if export_kw is not None:
        conn["export_limit_kw"] = export_kw
    return [conn]


def heat_pump(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "hp1",
        "connection": "T1",
        "electric_kw": 4,
        "store_kwh": 0,
        "store_loss_per_h": 0.0,
        "initial_store": 0.0,
        "cop": {"intercept": 3.0, "slope_per_degc": 0.0},
    }
    base.update(kw)
    return base


def kinds(plan: Any) -> dict[tuple[str, str, str | None], float]:
    return {(v.kind, v.asset, v.start): v.amount for v in plan.violations}


def checked(site: Any, inputs: Any) -> Any:
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    return plan


def test_issue_example_heat_pump_runs_at_the_limit_and_reports_unmet_heat() -> None:
    # One connection with a 2 kW hard limit and no households; a 4 kW heat pump (COP 3, no store)
    # facing 9 kW of heat demand per hour. 2 kW make 6 kW of heat, so 3 kWh of heat are unmet per
    # hour. There is no load to shed: unmet_load must be 0 and the heat pump's set-point 2 kW (the
    # old model set it to 3 kW and reported 1 kWh of unmet load on a connection without load).
    site = make_site(connections=hard(2.0), heat_pumps=[heat_pump()])
    plan = checked(site, make_inputs(site, 2, heat={"hp1": [9.0, 9.0]}))
    assert list(plan.assets["hp1"]["power_kw"]) == pytest.approx([2.0, 2.0], abs=1e-6)
    assert list(plan.connections["T1"]["import_kw"]) == pytest.approx([2.0, 2.0], abs=1e-6)
    assert list(plan.connections["T1"]["unmet_kw"]) == pytest.approx([0.0, 0.0], abs=1e-6)
    assert kinds(plan) == {
        ("unmet_heat", "hp1", at(0)): pytest.approx(3.0),
        ("unmet_heat", "hp1", at(1)): pytest.approx(3.0),
    }
    assert plan.kpis["unmet_load_kwh"] == 0.0 and plan.kpis["unmet_heat_kwh"] == pytest.approx(6.0)


def test_heat_pump_far_from_its_rating_gets_an_unmet_heat_slack_behind_a_hard_limit() -> None:
    # Demand 3 kW thermal = 1 kW electric, far below the 4 kW rating, but the limit is 0.5 kW and
    # there is no load: 0.5 kW make 1.5 kW of heat, 1.5 kWh unmet (feasible only because the slack
    # exists at every step of a heat pump behind a hard limit).
    site = make_site(connections=hard(0.5), heat_pumps=[heat_pump()])
    plan = checked(site, make_inputs(site, 1, heat={"hp1": [3.0]}))
    assert plan.assets["hp1"]["power_kw"][0] == pytest.approx(0.5, abs=1e-6)
    assert kinds(plan) == {("unmet_heat", "hp1", at(0)): pytest.approx(1.5)}


def test_unmet_load_is_the_load_above_the_limit_and_the_car_waits() -> None:
    # 5 kW of household load under a 2 kW hard limit, plus a wallbox (flexible) whose car needs 4 kWh
    # within the hour. Nothing flexible can help: 5 - 2 = 3 kWh of load are shed (unmet_load) and
    # the car gets nothing (4 kWh missed at 2 EUR/kWh, rather than shedding 4 more kWh of load at 10
    # EUR/kWh, which the bound unmet <= load would allow here).
    site = make_site(
        connections=hard(2.0),
        households=[household()],
        ev_chargers=[{"id": "wb0", "connection": "T1", "max_kw": 11}],
        ev_sessions=[{"id": "s0", "charger": "wb0", "arrival": at(0), "departure": at(1), "energy_needed_kwh": 4}],
    )
    plan = checked(site, make_inputs(site, 1, load={"h1": [5.0]}))
    assert plan.connections["T1"]["import_kw"][0] == pytest.approx(2.0)
    assert plan.assets["wb0"]["power_kw"][0] == pytest.approx(0.0, abs=1e-6)
    assert kinds(plan) == {
        ("unmet_load", "T1", at(0)): pytest.approx(3.0),
        ("ev_energy_missed", "s0", at(0)): pytest.approx(4.0),
    }


def test_ev_energy_missed_when_the_limit_binds_without_load() -> None:
    # No households, 3 kW hard limit, an 11 kW wallbox (flexible) with a car needing 10 kWh in two
    # hours: it charges 3 kW in both hours (6 kWh) and 10 - 6 = 4 kWh are missed. No unmet load.
    site = make_site(
        connections=hard(3.0),
        ev_chargers=[{"id": "wb0", "connection": "T1", "max_kw": 11}],
        ev_sessions=[{"id": "s0", "charger": "wb0", "arrival": at(0), "departure": at(2), "energy_needed_kwh": 10}],
    )
    plan = checked(site, make_inputs(site, 2))
    assert list(plan.assets["wb0"]["power_kw"]) == pytest.approx([3.0, 3.0], abs=1e-6)
    assert kinds(plan) == {("ev_energy_missed", "s0", at(1)): pytest.approx(4.0)}


def test_spill_is_at_most_the_generation_that_cannot_be_curtailed() -> None:
    # 10 kWp PV that cannot be curtailed at full sun (10 kW), 1 kW of load, hard export limit 4 kW and
    # an empty flexible battery (2 kW, 10 kWh, lossless). 10 - 1 - 2 (battery) - 4 (export) = 3 kW
    # must be spilled: excess_generation 3 kWh, and spill <= 10 kW of inflexible generation.
    site = make_site(
        connections=hard(50.0, export_kw=4.0),
        households=[household()],
        pv_arrays=[{"id": "pv1", "connection": "T1", "kwp": 10, "curtailable": False}],
        batteries=[
            {
                "id": "b1",
                "connection": "T1",
                "capacity_kwh": 10,
                "charge_kw": 2,
                "discharge_kw": 2,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
                "soc_min": 0.0,
                "initial_soc": 0.0,
            }
        ],
    )
    plan = checked(site, make_inputs(site, 1, load={"h1": [1.0]}, pv={"pv1": [1.0]}))
    assert plan.connections["T1"]["export_kw"][0] == pytest.approx(4.0)
    assert plan.assets["b1"]["charge_kw"][0] == pytest.approx(2.0)
    assert kinds(plan) == {("excess_generation", "T1", at(0)): pytest.approx(3.0)}


def test_par14a_minimum_gives_way_to_a_hard_limit() -> None:
    # A wallbox without a flexibility contract requests 11 kW (11 kWh in one hour); its §14a minimum is
    # 4.2 kW, but the hard limit is 3 kW and there is no load to shed. The limit wins: it draws 3 kW,
    # the minimum is missed by 4.2 - 3 = 1.2 kW (par14a_min_not_kept), 11 - 3 = 8 kWh are missed and
    # dimmed. Before, the model kept 4.2 kW and reported 1.2 kWh of unmet load that did not exist.
    site = make_site(
        connections=hard(3.0),
        ev_chargers=[{"id": "wb0", "connection": "T1", "max_kw": 11, "flex_contract": False}],
        ev_sessions=[{"id": "s0", "charger": "wb0", "arrival": at(0), "departure": at(1), "energy_needed_kwh": 11}],
    )
    plan = checked(site, make_inputs(site, 1))
    assert plan.assets["wb0"]["power_kw"][0] == pytest.approx(3.0, abs=1e-6)
    assert kinds(plan) == {
        ("par14a_min_not_kept", "wb0", at(0)): pytest.approx(1.2),
        ("ev_energy_missed", "s0", at(0)): pytest.approx(8.0),
    }
    assert plan.assets["wb0"]["dimmed_kw"][0] == pytest.approx(8.0)


def test_ems_group_minimum_gives_way_to_a_hard_limit() -> None:
    # Two 11 kW wallboxes without contract behind one EMS (minimum 7.56 kW together) under a 5 kW hard
    # limit without load: together they draw 5 kW and miss the group minimum by 2.56 kW.
    site = make_site(
        connections=hard(5.0),
        ev_chargers=[
            {"id": f"wb{i}", "connection": "T1", "max_kw": 11, "flex_contract": False, "ems": "e1"} for i in range(2)
        ],
        ev_sessions=[
            {"id": f"s{i}", "charger": f"wb{i}", "arrival": at(0), "departure": at(1), "energy_needed_kwh": 11}
            for i in range(2)
        ],
    )
    plan = checked(site, make_inputs(site, 1))
    total = plan.assets["wb0"]["power_kw"][0] + plan.assets["wb1"]["power_kw"][0]
    assert total == pytest.approx(5.0, abs=1e-6)
    assert kinds(plan)[("par14a_min_not_kept", "ems:e1", at(0))] == pytest.approx(2.56)
