"""End-of-horizon conditions per asset: each battery and heat store has its own penalty or a hard
flag; the trade-off between a soft target and shedding. dt = 1 h, numbers derived in comments."""

from __future__ import annotations

from typing import Any

import pytest

from grid.errors import InputErrors
from models.tables import build_tables
from tests.models.invariants import check_plan
from tests.models.sites import at, household, make_inputs, make_site, run


def kinds(plan: Any) -> dict[tuple[str, str, str | None], float]:
    return {(v.kind, v.asset, v.start): v.amount for v in plan.violations}


def battery_site(**terminal: Any) -> Any:
    # Hard 10 kW limit, load 10 then 12 kW: no room to charge in hour 0, 2 kW short in hour 1. A
    # battery (5 kW, 10 kWh, half full, 95 % efficient each way) should end where it started (5 kWh).
    # (Lossless, shedding 2 kWh in hour 0 to charge it would tie with shedding them in hour 1.)
    return make_site(
        connections=[{"id": "T1", "rated_kva": 10, "power_factor": 1.0, "hard_limits": True}],
        households=[household()],
        batteries=[
            {
                "id": "b1",
                "connection": "T1",
                "capacity_kwh": 10,
                "charge_kw": 5,
                "discharge_kw": 5,
                "charge_efficiency": 0.95,
                "discharge_efficiency": 0.95,
                "soc_min": 0.0,
                **terminal,
            }
        ],
    )


def plan_battery(**terminal: Any) -> Any:
    site = battery_site(**terminal)
    inputs = make_inputs(site, 2, load={"h1": [10.0, 12.0]})
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    return plan


def test_soft_battery_target_gives_way_before_load_is_shed() -> None:
    # Default price 1.5 EUR/kWh short < 10 EUR/kWh shed: the battery covers the 2 kW and ends
    # 2 / 0.95 = 2.105 kWh short of its target (3.16 EUR < 20 EUR of shedding); nothing is shed.
    plan = plan_battery()
    assert plan.assets["b1"]["discharge_kw"][1] == pytest.approx(2.0)
    assert kinds(plan) == {("terminal_soc_shortfall", "b1", None): pytest.approx(2 / 0.95)}


@pytest.mark.parametrize("terminal", [{"terminal_hard": True}, {"terminal_penalty_eur_per_kwh": 20.0}])
def test_hard_or_dear_battery_target_sheds_load_instead(terminal: dict[str, Any]) -> None:
    # Hard (1000 EUR/kWh) or its own price 20 EUR/kWh: 2.105 kWh short cost 42 EUR > 20 EUR of
    # shedding, so the battery keeps its 5 kWh and the 2 kW above the limit are shed as unmet load.
    plan = plan_battery(**terminal)
    assert plan.assets["b1"]["discharge_kw"][1] == pytest.approx(0.0, abs=1e-9)
    assert kinds(plan) == {("unmet_load", "T1", at(1)): pytest.approx(2.0)}


def heat_site(penalties: dict[str, float] | None = None, **terminal: Any) -> Any:
    # A 2 kW heat pump (COP 3, lossless 10 kWh store, half full = 5 kWh) and 9 kW of heat demand in
    # two hours: it makes 6 kW, 3 kWh short per hour = 6 kWh over the horizon, to be taken from the
    # store or left unmet (3 EUR/kWh).
    return make_site(
        households=[household()],
        heat_pumps=[
            {
                "id": "hp1",
                "connection": "T1",
                "electric_kw": 2,
                "store_kwh": 10,
                "store_loss_per_h": 0.0,
                "cop": {"intercept": 3.0, "slope_per_degc": 0.0},
                **terminal,
            }
        ],
        penalties=penalties or {},
    )


def plan_heat(penalties: dict[str, float] | None = None, **terminal: Any) -> Any:
    site = heat_site(penalties, **terminal)
    inputs = make_inputs(site, 2, load={"h1": [0.0, 0.0]}, heat={"hp1": [9.0, 9.0]})
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    return plan


def test_soft_heat_store_target_is_used_before_heat_goes_unmet() -> None:
    # Target 0.2 x 10 = 2 kWh: the store gives 3 kWh freely (5 -> 2) and 2 more below its target at
    # 1.5 EUR/kWh (< 3 unmet heat): store ends empty, shortfall 2 kWh, 6 - 5 = 1 kWh unmet heat.
    plan = plan_heat(terminal_store=0.2)
    assert plan.assets["hp1"]["soc_kwh"][-1] == pytest.approx(0.0, abs=1e-9)
    found = kinds(plan)
    assert found.pop(("heat_store_shortfall", "hp1", None)) == pytest.approx(2.0)
    assert sum(v for (k, _, _), v in found.items() if k == "unmet_heat") == pytest.approx(1.0)
    assert {k for k, _, _ in found} == {"unmet_heat"}


@pytest.mark.parametrize(
    ("penalties", "terminal"),
    [
        (None, {"terminal_hard": True}),
        (None, {"terminal_penalty_eur_per_kwh": 4.0}),
        ({"heat_store_shortfall_eur_per_kwh": 4.0}, {}),  # the site-wide default for heat stores
    ],
)
def test_hard_or_dear_heat_store_target_leaves_heat_unmet(
    penalties: dict[str, float] | None, terminal: dict[str, Any]
) -> None:
    # Hard, or 4 EUR/kWh > 3 unmet heat: the store stops at 2 kWh (gives 3), 6 - 3 = 3 kWh unmet heat.
    plan = plan_heat(penalties, terminal_store=0.2, **terminal)
    assert plan.assets["hp1"]["soc_kwh"][-1] == pytest.approx(2.0)
    found = kinds(plan)
    assert {k for k, _, _ in found} == {"unmet_heat"}
    assert sum(found.values()) == pytest.approx(3.0)


def test_heat_store_penalty_does_not_change_the_battery_price() -> None:
    # The heat store's site-wide price (4) leaves a battery on the default 1.5: the battery case above
    # gives the same plan with it.
    site = battery_site()
    site.penalties.heat_store_shortfall_eur_per_kwh = 4.0
    plan = run(site, make_inputs(site, 2, load={"h1": [10.0, 12.0]}))
    assert kinds(plan) == {("terminal_soc_shortfall", "b1", None): pytest.approx(2 / 0.95)}


def test_a_valued_battery_cannot_also_have_a_target() -> None:
    with pytest.raises(InputErrors) as err:
        battery_site(stored_energy_value_eur_per_kwh=0.1, terminal_hard=True)
    assert "batteries[0].terminal_hard: conflicts with stored_energy_value_eur_per_kwh" in str(err.value)
