"""Planning reserve under an import limit (``SiteInputs.reserve_kw``, the band a load forecast may
miss): flexible devices stay out of it unless the price spread pays more than its price, a limit
breach is still only a breach of the limit itself, and a reserve only moves numbers (warm re-plan)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from grid.series import SiteInputs
from models.tables import build_tables
from models.warm import structure_key
from tests.models.invariants import check_plan
from tests.models.sites import household, make_inputs, make_site, run

BATTERY = {
    "id": "bat",
    "connection": "T1",
    "capacity_kwh": 40.0,
    "charge_kw": 10.0,
    "discharge_kw": 10.0,
    "charge_efficiency": 1.0,
    "discharge_efficiency": 1.0,
    "soc_min": 0.0,
    "initial_soc": 0.0,
}


def with_reserve(inputs: SiteInputs, limit_kw: float, reserve_kw: float) -> SiteInputs:
    """`inputs` under an import limit of `limit_kw` (as an order) with `reserve_kw` kept below it."""
    return dataclasses.replace(
        inputs,
        ordered_import_kw=pd.DataFrame({"T1": limit_kw}, index=inputs.index),
        reserve_kw=pd.DataFrame({"T1": reserve_kw}, index=inputs.index),
    )


@pytest.mark.parametrize(
    ("expensive", "charge_kw"),
    [
        (0.3, 2.0),  # spread 0.2 < 0.5 EUR/kWh of the reserve: charge only up to limit - reserve
        (0.9, 5.0),  # spread 0.8 > 0.5: worth drawing into the reserve, up to the limit itself
    ],
)
def test_flexible_load_enters_the_reserve_only_when_the_spread_pays_for_it(expensive: float, charge_kw: float) -> None:
    """20 kW of load, limit 25 kW with a 3 kW reserve, prices 0.1 then `expensive`: the battery
    (empty, ends empty) charges in the cheap hours and discharges in the dear ones."""
    site = make_site(households=[household()], batteries=[BATTERY])
    base = make_inputs(site, 4, load={"h1": [20.0] * 4}, price=[0.1, 0.1, expensive, expensive])
    inputs = with_reserve(base, 25.0, 3.0)
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    conn = plan.connections["T1"]
    assert list(conn["import_kw"][:2]) == pytest.approx([20 + charge_kw] * 2, abs=1e-6)
    assert sum(conn["import_kw"][2:]) == pytest.approx(40 - 2 * charge_kw, abs=1e-6)  # all of it back (when: a tie)
    assert list(conn["reserve_kw"]) == pytest.approx([3.0] * 4)
    assert list(conn["in_reserve_kw"]) == pytest.approx([charge_kw - 2.0] * 2 + [0.0] * 2, abs=1e-6)
    assert not plan.violations  # the reserve is not a limit: drawing into it is priced, not a breach


def test_inflexible_load_in_the_reserve_is_no_violation_and_a_breach_is_of_the_limit() -> None:
    """30 kW of household load under a 25 kW limit with a 3 kW reserve: 5 kW above the limit is
    the breach reported (not 8), and the plan reports the 3 kW of reserve in use."""
    site = make_site(households=[household()])
    inputs = with_reserve(make_inputs(site, 2, load={"h1": [30.0, 30.0]}), 25.0, 3.0)
    plan = run(site, inputs)
    assert [(v.kind, v.amount) for v in plan.violations] == [
        ("import_limit_exceeded", pytest.approx(5.0)),
        ("import_limit_exceeded", pytest.approx(5.0)),
    ]
    assert list(plan.connections["T1"]["in_reserve_kw"]) == pytest.approx([3.0, 3.0], abs=1e-6)


def test_a_reserve_only_moves_numbers_and_none_leaves_the_plan_as_it_was() -> None:
    site = make_site(households=[household()], batteries=[BATTERY])
    base = make_inputs(site, 4, load={"h1": [20.0] * 4}, price=[0.1, 0.1, 0.3, 0.3])
    plain = build_tables(site, base, base.index)
    reserved = build_tables(site, with_reserve(base, 1000.0, 3.0), base.index)
    assert structure_key(plain) == structure_key(reserved)
    assert np.array_equal(plain.connections.reserve_kw, np.zeros((1, 4)))
    assert "reserve_kw" not in run(site, base).connections["T1"]  # no reserve given: nothing reported
