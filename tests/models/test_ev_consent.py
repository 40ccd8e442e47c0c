"""V2G needs the car's consent: a V2G charger with a flexibility contract discharges a consenting
car when that pays, never one without consent (the same model: consent is a number)."""

from __future__ import annotations

import pandas as pd
import pytest

from grid.domain import Site
from grid.series import SiteInputs
from models.tables import build_tables
from models.warm import structure_key
from tests.models.invariants import check_plan
from tests.models.sites import START, household, make_inputs, make_site, run

PRICES = [0.5, 0.1, 0.1, 0.1]  # EUR/kWh: expensive now, cheap later


def _case(consent: bool) -> tuple[Site, SiteInputs]:
    site = make_site(
        households=[household()],
        ev_chargers=[{"id": "wb", "connection": "T1", "max_kw": 10.0, "v2g": True, "flex_contract": True}],
        ev_sessions=[
            {
                "id": "car",
                "charger": "wb",
                "arrival": START.isoformat(),
                "departure": (START + pd.Timedelta(hours=4)).isoformat(),
                "energy_needed_kwh": 0.0,
                "capacity_kwh": 50.0,
                "initial_soc": 0.5,
                "v2g_consent": consent,
            }
        ],
    )
    return site, make_inputs(site, 4, load={"h1": [10.0] * 4}, price=PRICES)


def test_only_a_consenting_car_is_discharged() -> None:
    """With consent the car covers the household's 10 kW in the expensive hour and is charged back
    later (the end-of-session energy is what it came with); without consent it stays idle."""
    plans = {}
    for consent in (True, False):
        site, inputs = _case(consent)
        plans[consent] = run(site, inputs)
        check_plan(plans[consent], build_tables(site, inputs, inputs.index))
    assert plans[True].assets["wb"]["power_kw"][0] == pytest.approx(-10.0, abs=1e-6)
    assert min(plans[False].assets["wb"]["power_kw"]) == pytest.approx(0.0, abs=1e-9)
    assert max(plans[False].assets["wb"]["power_kw"]) == pytest.approx(0.0, abs=1e-9)


def test_consent_is_a_number_not_structure() -> None:
    keys = {structure_key(build_tables(s, i, i.index)) for s, i in (_case(True), _case(False))}
    assert len(keys) == 1
