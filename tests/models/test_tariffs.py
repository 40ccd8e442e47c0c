"""What users need to express: per-connection tariffs, feed-in as a series or the spot price, the
German PV rules per array (negative-price rule, 60 % export cap). dt = 1 h, site in UTC so that the
grid-fee windows are easy to read; every expected number is derived in a comment."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from grid.errors import InputError, InputErrors
from models.tables import build_tables, unpaid_steps
from tests.models.invariants import check_plan
from tests.models.sites import household, make_inputs, make_site, run

UTC_SITE = {"id": "test", "resolution_min": 60, "timezone": "UTC"}


def checked(site: Any, inputs: Any) -> Any:
    plan = run(site, inputs)
    check_plan(plan, build_tables(site, inputs, inputs.index))
    return plan


def with_series(inputs: Any, **series: list[float]) -> Any:
    for name, values in series.items():
        setattr(inputs, name, pd.Series(values, index=inputs.index, dtype=float))
    return inputs


def test_two_connections_in_different_tariff_zones() -> None:
    # T1 on the site tariff (0.20 EUR/kWh, no fee, no peak charge) with 10 kW of load; T2 in another
    # zone: 0.30 EUR/kWh, grid fee 0.05 with a cheap window 01:00-02:00 (0.01), peak charge 1 EUR/kW,
    # 5 kW of load. T1: 20 kWh x 0.20 = 4.00. T2: 5 x 0.35 + 5 x 0.31 = 3.30, peak 5 kW x 1 = 5.00.
    # Total 12.30 EUR; grid fees 0.25 + 0.05 = 0.30; peak charge only at T2.
    site = make_site(
        site=UTC_SITE,
        connections=[
            {"id": "T1", "rated_kva": 100, "power_factor": 1.0},
            {
                "id": "T2",
                "rated_kva": 100,
                "power_factor": 1.0,
                "tariff": {
                    "import_price_eur_per_kwh": 0.30,
                    "grid_fee_eur_per_kwh": 0.05,
                    "grid_fee_windows": [{"start": "01:00", "end": "02:00", "fee_eur_per_kwh": 0.01}],
                    "peak_charge_eur_per_kw": 1.0,
                },
            },
        ],
        households=[household("h1"), household("h2", connection="T2")],
    )
    plan = checked(site, make_inputs(site, 2, load={"h1": [10.0, 10.0], "h2": [5.0, 5.0]}))
    assert plan.objective_eur == pytest.approx(12.30)
    assert plan.kpis["grid_fees_eur"] == pytest.approx(0.30)
    assert plan.kpis["peak_charge_eur"] == pytest.approx(5.0)
    assert plan.kpis["energy_cost_eur"] == pytest.approx(4.0 + 3.0)


def pv_site(**tariff: Any) -> Any:
    # 10 kWp PV (curtailable) and a lossless battery (10 kW, 10 kWh, empty, ends empty), no load
    return make_site(
        site=UTC_SITE,
        households=[household()],
        pv_arrays=[{"id": "pv1", "connection": "T1", "kwp": 10}],
        batteries=[
            {
                "id": "b1",
                "connection": "T1",
                "capacity_kwh": 10,
                "charge_kw": 10,
                "discharge_kw": 10,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
                "soc_min": 0.0,
                "initial_soc": 0.0,
            }
        ],
        tariff={"import_price_eur_per_kwh": 0.3, **tariff},
    )


def test_feed_in_price_series_moves_exports_to_the_better_hour() -> None:
    # Feed-in 0.05 then 0.10 EUR/kWh, 10 kW of PV in both hours: store hour 0's 10 kWh and sell 20 kWh
    # in hour 1: revenue 2.00 EUR (instead of 0.5 + 1.0 = 1.50 without the battery).
    site = pv_site()
    inputs = with_series(
        make_inputs(site, 2, load={"h1": [0.0, 0.0]}, pv={"pv1": [1.0, 1.0]}), feed_in_eur_per_kwh=[0.05, 0.10]
    )
    plan = checked(site, inputs)
    assert list(plan.connections["T1"]["export_kw"]) == pytest.approx([0.0, 20.0], abs=1e-6)
    assert plan.kpis["feed_in_revenue_eur"] == pytest.approx(2.0)
    assert plan.objective_eur == pytest.approx(-2.0)


def test_feed_in_at_the_spot_price_curtails_at_negative_prices() -> None:
    # Direct marketing: feed-in = day-ahead price 0.04 then -0.02 EUR/kWh. Hour 0: sell 10 kWh (0.40);
    # hour 1: exporting costs money and the battery must end empty (it could only sell at a loss), so
    # the PV is curtailed. Objective -0.40.
    site = pv_site(feed_in_price_eur_per_kwh="spot")
    inputs = with_series(
        make_inputs(site, 2, load={"h1": [0.0, 0.0]}, pv={"pv1": [1.0, 1.0]}), spot_eur_per_kwh=[0.04, -0.02]
    )
    plan = checked(site, inputs)
    assert plan.objective_eur == pytest.approx(-0.40)
    assert plan.assets["pv1"]["curtailed_kw"][1] == pytest.approx(10.0)


def rule_site(new_rule: dict[str, Any], **tariff: Any) -> Any:
    # Two curtailable 10 kWp arrays on T1 and 5 kW of load: "new" (under the 2025 rules, with a
    # smart-meter gateway, so not capped) and "old" (no commissioning date: no rule).
    return make_site(
        site=UTC_SITE,
        households=[household()],
        pv_arrays=[
            {"id": "new", "connection": "T1", "kwp": 10, "smart_meter_gateway": True, **new_rule},
            {"id": "old", "connection": "T1", "kwp": 10},
        ],
        tariff={"import_price_eur_per_kwh": 0.3, **tariff},
    )


def test_no_feed_in_payment_in_negative_quarter_hours_for_new_arrays() -> None:
    # Feed-in 0.08 (EEG), day-ahead 0.05 then -0.01. Hour 0: 20 - 5 = 15 kWh exported, all paid: 1.20.
    # Hour 1 (negative price): "new" gets no payment; the load is served by it first, so at most the
    # old array's 10 kW earn: 0.80. Revenue 2.00 EUR, objective -2.00; the unpaid export is the rest.
    site = rule_site({"commissioned": "2025-06-01"}, feed_in_price_eur_per_kwh=0.08)
    inputs = with_series(
        make_inputs(site, 2, load={"h1": [5.0, 5.0]}, pv={"new": [1.0, 1.0], "old": [1.0, 1.0]}),
        spot_eur_per_kwh=[0.05, -0.01],
    )
    plan = checked(site, inputs)
    assert plan.objective_eur == pytest.approx(-2.0)
    assert plan.kpis["feed_in_revenue_eur"] == pytest.approx(2.0)
    conn = plan.connections["T1"]
    paid = np.asarray(conn["export_kw"]) - np.asarray(conn["unpaid_export_kw"])
    assert list(paid) == pytest.approx([15.0, 10.0], abs=1e-6)
    assert plan.assets["new"]["negative_price_rule"] == "quarter_hour"
    assert list(plan.assets["new"]["feed_in_unpaid"]) == [0.0, 1.0]
    assert "negative_price_rule" not in plan.assets["old"]


def test_the_rule_can_be_set_per_array_and_none_keeps_paying() -> None:
    # The same array with negative_price_rule "none" is paid in both hours: 15 x 0.08 x 2 = 2.40 EUR.
    site = rule_site({"commissioned": "2025-06-01", "negative_price_rule": "none"}, feed_in_price_eur_per_kwh=0.08)
    inputs = with_series(
        make_inputs(site, 2, load={"h1": [5.0, 5.0]}, pv={"new": [1.0, 1.0], "old": [1.0, 1.0]}),
        spot_eur_per_kwh=[0.05, -0.01],
    )
    assert checked(site, inputs).objective_eur == pytest.approx(-2.40)


def test_unpaid_array_escapes_a_negative_spot_feed_in() -> None:
    # Direct marketing at -0.05 EUR/kWh with both arrays not curtailable (20 kW) and 5 kW of load:
    # 15 kW must be exported. Exports of "old" cost 0.05/kWh, exports of "new" (no payment in
    # negative quarter-hours) nothing; "old" serves the load, so 10 kW of the export are "new"'s
    # (unpaid) and 5 kW "old"'s: cost 5 x 0.05 = 0.25 EUR (0.75 if all were paid).
    site = rule_site({"commissioned": "2025-06-01", "curtailable": False}, feed_in_price_eur_per_kwh="spot")
    site.pv_arrays[1].curtailable = False
    inputs = with_series(
        make_inputs(site, 1, load={"h1": [5.0]}, pv={"new": [1.0], "old": [1.0]}), spot_eur_per_kwh=[-0.05]
    )
    plan = checked(site, inputs)
    assert plan.objective_eur == pytest.approx(0.25)
    assert plan.connections["T1"]["unpaid_export_kw"][0] == pytest.approx(10.0)
    assert plan.kpis["feed_in_revenue_eur"] == pytest.approx(-0.25)


def test_consecutive_hours_rules_at_quarter_hour_resolution() -> None:
    # 15-minute steps: a run of 3 negative quarter-hours (0.75 h) and a run of 4 (1 h).
    spot = np.array([0.1, -1, -1, -1, 0.1, -1, -1, -1, -1, 0.1])
    assert list(unpaid_steps("quarter_hour", spot, 0.25)) == [0, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    assert list(unpaid_steps("1h", spot, 0.25)) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert list(unpaid_steps("2h", spot, 0.25)) == [0] * 10
    assert list(unpaid_steps("none", spot, 0.25)) == [0] * 10


@pytest.mark.parametrize(
    ("array", "rule"),
    [
        ({"commissioned": "2025-02-25", "kwp": 5}, "quarter_hour"),
        ({"commissioned": "2025-02-24", "kwp": 5}, "none"),
        ({"commissioned": "2025-06-01", "kwp": 1.5}, "none"),  # below 2 kWp
        ({"kwp": 5}, "none"),
        ({"commissioned": "2020-01-01", "kwp": 5, "negative_price_rule": "6h"}, "6h"),
    ],
)
def test_rule_follows_the_commissioning_date(array: dict[str, Any], rule: str) -> None:
    site = make_site(pv_arrays=[{"id": "pv1", "connection": "T1", **array}])
    tables = build_tables(site, make_inputs(site, 1, pv={"pv1": [0.5]}), make_inputs(site, 1).index)
    assert tables.pv.rule == [rule]


def test_new_array_without_smart_meter_gateway_feeds_in_at_most_60_percent() -> None:
    # 10 kWp commissioned 2025-06-01 without a gateway at full sun: at most 0.6 x 10 = 6 kW; the same
    # with a gateway 10 kW. Feed-in 0.08, no load: revenue 0.48 vs 0.80 EUR.
    for gateway, kw in ((False, 6.0), (True, 10.0)):
        site = make_site(
            pv_arrays=[
                {
                    "id": "pv1",
                    "connection": "T1",
                    "kwp": 10,
                    "commissioned": "2025-06-01",
                    "smart_meter_gateway": gateway,
                }
            ],
            tariff={"import_price_eur_per_kwh": 0.3, "feed_in_price_eur_per_kwh": 0.08},
        )
        plan = checked(site, with_series(make_inputs(site, 1, pv={"pv1": [1.0]}), spot_eur_per_kwh=[0.1]))
        assert plan.connections["T1"]["export_kw"][0] == pytest.approx(kw)
        assert plan.objective_eur == pytest.approx(-0.08 * kw)
        assert ("export_cap_kw" in plan.assets["pv1"]) == (not gateway)


def test_bad_feed_in_settings_name_where_and_what() -> None:
    site = pv_site(feed_in_price_eur_per_kwh="spot")
    inputs = with_series(make_inputs(site, 1, load={"h1": [0.0]}, pv={"pv1": [1.0]}), feed_in_eur_per_kwh=[0.1])
    with pytest.raises(InputError) as err:
        build_tables(site, inputs, inputs.index)
    assert str(err.value).startswith("tariff.feed_in_price_eur_per_kwh: is 'spot' but the prices input")
    bad = [
        ({"pv_arrays": [{"id": "p", "connection": "T1", "kwp": 5, "negative_price_rule": "5h"}]}, "pv_arrays[0]"),
        ({"pv_arrays": [{"id": "p", "connection": "T1", "kwp": 5, "commissioned": "2025-13-01"}]}, "pv_arrays[0]"),
        (
            {"connections": [{"id": "T1", "rated_kva": 10, "tariff": {"grid_fee_eur_per_kwh": -1}}]},
            "connections[0].tariff.grid_fee_eur_per_kwh: must be >= 0, got -1",
        ),
        ({"tariff": {"feed_in_price_eur_per_kwh": "market"}}, "tariff.feed_in_price_eur_per_kwh"),
    ]
    for parts, expected in bad:
        with pytest.raises(InputErrors) as errs:
            make_site(**parts)
        assert expected in str(errs.value), str(errs.value)
