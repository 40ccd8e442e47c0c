"""Re-solving the same model after changing mutable parameters gives what a fresh build gives."""

from __future__ import annotations

import pytest

from models.dispatch import build_model
from models.solve import solve_model
from models.tables import build_tables
from tests.models.sites import household, make_inputs, make_site
from tests.models.test_reference_highspy import KWP, LOAD, PRICE, PV


def case(price: list[float], load: list[float], initial_soc: float):  # type: ignore[no-untyped-def]
    site = make_site(
        connections=[{"id": "T1", "rated_kva": 1000, "power_factor": 1.0, "import_limit_kw": 100.0}],
        households=[household()],
        pv_arrays=[{"id": "pv1", "connection": "T1", "kwp": KWP}],
        batteries=[
            {
                "id": "b1",
                "connection": "T1",
                "capacity_kwh": 80,
                "charge_kw": 30,
                "discharge_kw": 25,
                "initial_soc": initial_soc,
                "soc_min": 0.1,
            }
        ],
        heat_pumps=[{"id": "hp1", "connection": "T1", "electric_kw": 3, "store_kwh": 12}],
        tariff={"import_price_eur_per_kwh": None, "feed_in_price_eur_per_kwh": 0.07},
    )
    inputs = make_inputs(
        site, len(load), load={"h1": load}, pv={"pv1": PV}, heat={"hp1": [4.0] * len(load)}, price=price
    )
    return build_tables(site, inputs, inputs.index)


def test_updated_parameters_give_the_fresh_optimum() -> None:
    first = build_model(case(PRICE, LOAD, 0.5))
    outcome = solve_model(first)
    assert outcome.ok
    new_price = [p * 1.5 if t % 2 else p for t, p in enumerate(PRICE)]
    new_load = [x + 10.0 for x in LOAD]
    changed = case(new_price, new_load, 0.3)
    m = first.model
    for t, p in enumerate(changed.prices.import_eur_per_kwh[0] + changed.prices.co2_eur_per_kwh):
        m.connections.import_price[0, t] = float(p)
    for t, x in enumerate(changed.connections.fixed_load_kw[0]):
        m.connections.fixed_net_kw[0, t] = float(x)
    m.batteries.initial_kwh[0] = float(changed.batteries.initial_kwh[0])
    warm = solve_model(first, solver=outcome.solver)
    cold = solve_model(build_model(changed))
    assert warm.ok and cold.ok
    assert warm.objective_eur == pytest.approx(cold.objective_eur, rel=1e-9)
    assert warm.objective_eur != pytest.approx(outcome.objective_eur, rel=1e-3)
