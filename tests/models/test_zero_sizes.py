"""Zero is a valid limit or size (zero-feed-in connections, a battery or charger of 0 kW, a
connection out of service), and an EV session outside the horizon is accepted and does nothing.
dt = 1 h; expected numbers derived in the comments."""

from __future__ import annotations

from typing import Any

import pytest

from models.tables import build_tables
from tests.models.invariants import check_plan
from tests.models.sites import at, household, make_inputs, make_site, run


def checked(site: Any, inputs: Any) -> Any:
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    return plan


def kinds(plan: Any) -> dict[tuple[str, str, str | None], float]:
    return {(v.kind, v.asset, v.start): v.amount for v in plan.violations}


@pytest.mark.parametrize("hard", [False, True])
def test_zero_feed_in_connection_curtails_the_surplus(hard: bool) -> None:
    # Export limit 0 kW, 10 kWp curtailable PV at full sun, 2 kW of load, feed-in 0.08: exporting
    # anything would breach (5 EUR/kWh, soft) or is impossible (hard), so 8 kW are curtailed and
    # the connection neither imports nor exports; cost 0.
    site = make_site(
        connections=[{"id": "T1", "rated_kva": 100, "power_factor": 1.0, "export_limit_kw": 0, "hard_limits": hard}],
        households=[household()],
        pv_arrays=[{"id": "pv1", "connection": "T1", "kwp": 10}],
        tariff={"import_price_eur_per_kwh": 0.3, "feed_in_price_eur_per_kwh": 0.08},
    )
    plan = checked(site, make_inputs(site, 1, load={"h1": [2.0]}, pv={"pv1": [1.0]}))
    assert plan.status == "optimal"
    assert plan.assets["pv1"]["curtailed_kw"][0] == pytest.approx(8.0)
    assert plan.connections["T1"]["export_kw"][0] == pytest.approx(0.0, abs=1e-9)
    assert plan.objective_eur == pytest.approx(0.0, abs=1e-9)


def out_of_service(hard: bool) -> Any:
    # 0/0 limits, 3 kW of load, 2 kW of PV (curtailable), a flexible battery (5 kW, 10 kWh, half full,
    # lossless, must end where it started) and a car wanting 4 kWh in the hour.
    return make_site(
        connections=[
            {"id": "T1", "rated_kva": 0, "power_factor": 1.0, "hard_limits": hard},
            {"id": "T2", "rated_kva": 100, "power_factor": 1.0},
        ],
        households=[household()],
        pv_arrays=[{"id": "pv1", "connection": "T1", "kwp": 2}],
        batteries=[
            {
                "id": "b1",
                "connection": "T1",
                "capacity_kwh": 10,
                "charge_kw": 5,
                "discharge_kw": 5,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
                "soc_min": 0.0,
            }
        ],
        ev_chargers=[{"id": "wb0", "connection": "T1", "max_kw": 11}],
        ev_sessions=[{"id": "s0", "charger": "wb0", "arrival": at(0), "departure": at(1), "energy_needed_kwh": 4}],
    )


def test_connection_out_of_service_hard_sheds_only_what_local_sources_cannot_cover() -> None:
    # Hard 0/0: nothing can be imported. The battery (5 kWh in it) covers the 1 kW the PV leaves of
    # the load (a terminal shortfall costs 1.5 EUR/kWh, shedding 10) and, since 1.5 < 2 EUR/kWh of
    # missed EV energy, also gives the car its 4 kWh: it discharges 1 + 4 = 5 kW, ends empty
    # (shortfall 5 kWh); nothing is shed or imported.
    site = out_of_service(hard=True)
    plan = checked(site, make_inputs(site, 1, load={"h1": [3.0]}, pv={"pv1": [1.0]}))
    assert plan.connections["T1"]["import_kw"][0] == pytest.approx(0.0, abs=1e-9)
    assert plan.assets["b1"]["discharge_kw"][0] == pytest.approx(5.0)
    assert plan.assets["wb0"]["power_kw"][0] == pytest.approx(4.0)
    assert kinds(plan) == {("terminal_soc_shortfall", "b1", None): pytest.approx(5.0)}


def test_connection_out_of_service_soft_breaches_instead() -> None:
    # Soft 0/0: the same, but importing is possible at 5 EUR/kWh of breach + 0.2: the battery
    # (1.5 EUR/kWh) is cheaper, so the same plan results and nothing breaches.
    site = out_of_service(hard=False)
    plan = checked(site, make_inputs(site, 1, load={"h1": [3.0]}, pv={"pv1": [1.0]}))
    assert plan.assets["b1"]["discharge_kw"][0] == pytest.approx(5.0)
    assert kinds(plan) == {("terminal_soc_shortfall", "b1", None): pytest.approx(5.0)}
    assert plan.connections["T1"]["limit_import_kw"][0] == 0.0


def test_battery_and_charger_of_zero_kw_do_nothing() -> None:
    # A 0 kW / 0 kWh battery and a 0 kW wallbox (also one without a contract, whose §14a minimum is
    # then its rating, 0 kW): nothing flows, the car misses its 5 kWh, the load is imported.
    site = make_site(
        households=[household()],
        batteries=[{"id": "b0", "connection": "T1", "capacity_kwh": 0, "charge_kw": 0, "discharge_kw": 0}],
        ev_chargers=[
            {"id": "wb0", "connection": "T1", "max_kw": 0},
            {"id": "wb1", "connection": "T1", "max_kw": 0, "flex_contract": False},
        ],
        ev_sessions=[
            {"id": f"s{i}", "charger": f"wb{i}", "arrival": at(0), "departure": at(2), "energy_needed_kwh": 5}
            for i in range(2)
        ],
    )
    plan = checked(site, make_inputs(site, 2, load={"h1": [1.0, 1.0]}))
    assert list(plan.assets["b0"]["power_kw"]) == [0.0, 0.0]
    assert list(plan.assets["wb0"]["power_kw"]) == [0.0, 0.0] and list(plan.assets["wb1"]["power_kw"]) == [0.0, 0.0]
    assert kinds(plan) == {("ev_energy_missed", f"s{i}", at(1)): pytest.approx(5.0) for i in range(2)}
    assert plan.objective_eur == pytest.approx(2 * 0.2 + 10 * 2.0)


def test_heat_pump_of_zero_kw_reports_all_heat_unmet() -> None:
    # 0 kW electric, 3 kW thermal demand, no store: 3 kWh unmet heat.
    site = make_site(
        heat_pumps=[{"id": "hp1", "connection": "T1", "electric_kw": 0, "store_kwh": 0, "store_loss_per_h": 0}]
    )
    plan = checked(site, make_inputs(site, 1, heat={"hp1": [3.0]}))
    assert kinds(plan) == {("unmet_heat", "hp1", at(0)): pytest.approx(3.0)}


def test_ev_session_outside_the_horizon_is_accepted_and_contributes_nothing() -> None:
    # A session that arrives after the horizon (a rolling horizon carries it) and one that left before
    # it: the plan is the plan without them (1 kWh of load at 0.2 per hour = 0.4 EUR).
    site = make_site(
        households=[household()],
        ev_chargers=[{"id": "wb0", "connection": "T1", "max_kw": 11}],
        ev_sessions=[
            {"id": "later", "charger": "wb0", "arrival": at(5), "departure": at(8), "energy_needed_kwh": 4},
            {"id": "gone", "charger": "wb0", "arrival": at(-5), "departure": at(-2), "energy_needed_kwh": 4},
        ],
    )
    plan = checked(site, make_inputs(site, 2, load={"h1": [1.0, 1.0]}))
    assert plan.status == "optimal"
    assert plan.assets["wb0"]["sessions"] == {} and list(plan.assets["wb0"]["power_kw"]) == [0.0, 0.0]
    assert plan.objective_eur == pytest.approx(0.4)
