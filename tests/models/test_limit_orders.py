"""Grid-operator limit orders: a lower import or export limit over some intervals of one
connection, kept by the plan where the devices can keep it, reported as a breach where not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from grid.errors import InputErrors
from grid.series import SiteInputs
from models.tables import build_tables
from models.warm import structure_key
from tests.models.invariants import check_plan
from tests.models.sites import household, make_inputs, make_site, run

BATTERY = {
    "id": "bat",
    "connection": "T1",
    "capacity_kwh": 20.0,
    "charge_kw": 10.0,
    "discharge_kw": 10.0,
    "charge_efficiency": 1.0,
    "discharge_efficiency": 1.0,
    "soc_min": 0.0,
    "initial_soc": 0.9,
}


def ordered(inputs: SiteInputs, import_kw: list[float | None]) -> SiteInputs:
    frame = pd.DataFrame({"T1": [np.nan if v is None else v for v in import_kw]}, index=inputs.index)
    return dataclasses.replace(inputs, ordered_import_kw=frame)


def test_an_import_order_is_kept_by_discharging_the_battery() -> None:
    """20 kW of load at a flat price; an order of 12 kW at steps 2 and 3: the battery (18 kWh)
    supplies 8 kW there, so the connection imports exactly 12 kW, and recharges after."""
    site = make_site(households=[household()], batteries=[BATTERY])
    base = make_inputs(site, 6, load={"h1": [20.0] * 6}, price=[0.2] * 6)
    inputs = ordered(base, [None, None, 12.0, 12.0, None, None])
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    conn = plan.connections["T1"]
    assert list(conn["limit_import_kw"]) == pytest.approx([1000, 1000, 12, 12, 1000, 1000])
    assert list(conn["import_kw"])[2:4] == pytest.approx([12.0, 12.0], abs=1e-6)
    assert not plan.violations
    soc = plan.assets["bat"]["soc_kwh"]
    assert soc[4] <= 2.0 + 1e-6  # 16 kWh out by the end of the order (flat price: when is free)
    assert soc[6] == pytest.approx(18.0, abs=1e-6)  # back at its start, the default target


def test_an_order_that_cannot_be_kept_is_a_reported_breach() -> None:
    """Without a battery the 20 kW load cannot go below 12 kW: 8 kW above the order in each of
    the two steps, reported as the breach of the connection's import limit."""
    site = make_site(households=[household()])
    inputs = ordered(make_inputs(site, 4, load={"h1": [20.0] * 4}), [None, 12.0, 12.0, None])
    plan = run(site, inputs)
    breaches = [(v.kind, v.step, v.amount) for v in plan.violations]
    assert breaches == [
        ("import_limit_exceeded", 1, pytest.approx(8.0)),
        ("import_limit_exceeded", 2, pytest.approx(8.0)),
    ]


def test_an_order_above_the_own_limit_changes_nothing_and_orders_never_change_the_structure() -> None:
    site = make_site(households=[household()], batteries=[BATTERY])
    base = make_inputs(site, 4, load={"h1": [20.0] * 4})
    loose = build_tables(site, ordered(base, [5000.0, None, None, None]), base.index)
    plain = build_tables(site, base, base.index)
    assert np.array_equal(loose.connections.limit_import_kw, plain.connections.limit_import_kw)
    tight = build_tables(site, ordered(base, [1.0, 2.0, None, None]), base.index)
    assert structure_key(tight) == structure_key(plain)  # an order only moves numbers: warm re-plan


def test_an_order_for_an_unknown_connection_or_a_negative_limit_is_an_input_error() -> None:
    site = make_site(households=[household()])
    base = make_inputs(site, 2, load={"h1": [1.0, 1.0]})
    wrong = dataclasses.replace(base, ordered_export_kw=pd.DataFrame({"T9": [1.0, 1.0]}, index=base.index))
    with pytest.raises(InputErrors, match=r"inputs\.ordered_export_kw.*T9"):
        build_tables(site, wrong, base.index)
    with pytest.raises(InputErrors, match=r"inputs\.ordered_import_kw"):
        build_tables(site, ordered(base, [-1.0, None]), base.index)
