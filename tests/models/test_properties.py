"""Property test: random small sites always give a plan that satisfies every invariant."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid.domain import site_from_dict
from grid.series import SiteInputs
from grid.timeindex import horizon_index
from models.solve import plan_site
from models.tables import build_tables
from tests.models.invariants import check_plan
from tests.models.sites import START

kw = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)
frac = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def sites(draw: Any) -> tuple[Any, SiteInputs]:
    steps = draw(st.integers(4, 8))
    n_conn = draw(st.integers(1, 2))
    conns = [
        {
            "id": f"T{c}",
            "rated_kva": draw(st.floats(20, 200)),
            "power_factor": 1.0,
            "hard_limits": draw(st.booleans()),
            "export_limit_kw": draw(st.sampled_from([None, 0.0, 5.0])),
            "tariff": draw(st.sampled_from([None, {"peak_charge_eur_per_kw": 0.3, "feed_in_price_eur_per_kwh": 0.02}])),
        }
        for c in range(n_conn)
    ]

    def where() -> str:
        return f"T{draw(st.integers(0, n_conn - 1))}"

    homes = [
        {"id": f"h{i}", "meter_id": f"m{i}", "annual_kwh": 3000, "connection": where()}
        for i in range(draw(st.integers(0, 3)))
    ]
    pv = [
        {
            "id": f"pv{i}",
            "connection": where(),
            "kwp": draw(st.floats(1, 50)),
            "curtailable": draw(st.booleans()),
            "household": homes[0]["id"] if homes and i == 0 else None,
            "negative_price_rule": draw(st.sampled_from([None, "quarter_hour", "1h"])),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    bats = []
    for i in range(draw(st.integers(0, 2))):
        lo = draw(st.floats(0.0, 0.4))
        hi = draw(st.floats(0.6, 1.0))
        bats.append(
            {
                "id": f"b{i}",
                "connection": where(),
                "capacity_kwh": draw(st.floats(5, 100)),
                "charge_kw": draw(st.floats(1, 30)),
                "discharge_kw": draw(st.floats(1, 30)),
                "charge_efficiency": draw(st.floats(0.8, 1.0)),
                "discharge_efficiency": draw(st.floats(0.8, 1.0)),
                "soc_min": lo,
                "soc_max": hi,
                "initial_soc": draw(st.floats(lo, hi)),
                "self_discharge_per_h": draw(st.floats(0, 0.05)),
                "flex_contract": draw(st.booleans()),
                "household": homes[0]["id"] if homes else None,
            }
        )
    chargers = [
        {
            "id": f"wb{i}",
            "connection": where(),
            "max_kw": draw(st.sampled_from([3.7, 11.0, 22.0])),
            "v2g": draw(st.booleans()),
            "flex_contract": draw(st.booleans()),
            "ems": draw(st.sampled_from([None, "e1"])),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    sessions = []
    for i, c in enumerate(chargers):
        a = draw(st.integers(-2, steps - 1))
        d = draw(st.integers(a + 1, steps + 3))
        cap = draw(st.floats(20, 80))
        init = draw(st.floats(0, 0.5))
        sessions.append(
            {
                "id": f"s{i}",
                "charger": c["id"],
                "arrival": (START + pd.Timedelta(hours=a)).isoformat(),
                "departure": (START + pd.Timedelta(hours=d)).isoformat(),
                "energy_needed_kwh": draw(st.floats(0, cap * (1 - init))),
                "capacity_kwh": cap,
                "initial_soc": init,
            }
        )
    hps = [
        {
            "id": f"hp{i}",
            "connection": where(),
            "electric_kw": draw(st.floats(2, 15)),
            "store_kwh": draw(st.floats(0, 30)),
            "initial_store": draw(frac),
            "flex_contract": draw(st.booleans()),
            "ems": draw(st.sampled_from([None, "e1"])),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    site = site_from_dict(
        {
            "site": {"id": "prop", "resolution_min": 60},
            "connections": conns,
            "households": homes,
            "pv_arrays": pv,
            "batteries": bats,
            "ev_chargers": chargers,
            "ev_sessions": sessions,
            "heat_pumps": hps,
            "tariff": {
                "import_price_eur_per_kwh": None,
                "feed_in_price_eur_per_kwh": draw(st.floats(0, 0.1)),
                "peak_charge_eur_per_kw": draw(st.sampled_from([0.0, 0.2])),
            },
        }
    )
    idx = horizon_index(START, steps, 60)
    series = st.lists(kw, min_size=steps, max_size=steps)
    inputs = SiteInputs(
        base_load_kw=pd.DataFrame({h["id"]: draw(series) for h in homes}, index=idx),
        pv_kw_per_kwp=pd.DataFrame({p["id"]: [x / 60 for x in draw(series)] for p in pv}, index=idx),
        heat_demand_kw=pd.DataFrame({h["id"]: [x / 6 for x in draw(series)] for h in hps}, index=idx),
        temp_degc=pd.Series(draw(st.lists(st.floats(-10, 15), min_size=steps, max_size=steps)), index=idx),
        price_eur_per_kwh=pd.Series(draw(st.lists(st.floats(-0.05, 0.6), min_size=steps, max_size=steps)), index=idx),
    )
    return site, inputs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sites())
def test_random_sites_give_plans_that_keep_every_invariant(case: tuple[Any, SiteInputs]) -> None:
    site, inputs = case
    plan = plan_site(site, inputs, inputs.index)
    check_plan(plan, build_tables(site, inputs, inputs.index))
