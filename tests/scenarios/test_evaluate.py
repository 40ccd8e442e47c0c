"""Evaluation: the uncontrolled reference by hand, weighted windows, the comparison and its files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from grid.domain import Site
from grid.scenarios import run_scenario
from grid.scenarios.compare import compare_rows, read_table, write_results
from grid.scenarios.evaluate import evaluate, evaluate_site
from grid.scenarios.spec import scenario_from_dict
from grid.series import SiteInputs
from models.solve import SolveOptions
from tests.models.sites import household, make_inputs, make_site
from tests.scenarios.helpers import EVENING

# the figures the issue asks for, all present in every evaluation
REQUIRED = {
    "cost_eur",
    "peak_import_kw",
    "hours_above_limit_h",
    "energy_above_limit_kwh",
    "uncontrolled_hours_above_limit_h",
    "uncontrolled_energy_above_limit_kwh",
    "uncontrolled_peak_import_kw",
    "self_consumption",
    "self_sufficiency",
    "co2_kg",
    "curtailed_kwh",
    "ev_energy_missed_kwh",
    "dimming_events",
    "dimmed_kwh",
}


def test_uncontrolled_reference_by_hand() -> None:
    """One home (2 kW), a 4 kW wallbox needing 6 kWh from step 0, a heat pump (3 kW thermal in
    steps 0-1, COP 3.2 + 0.08 x 5 degC = 3.6, no store loss), 2 kWp PV (0, 0.5, 1, 0 kW/kWp), a
    home battery (5 of 10 kWh, 2 kW, lossless) doing greedy self-consumption; limit 4 kW, hourly.

    net = load 2 + EV (4, 2, 0, 0) + HP (3/3.6, 3/3.6, 0, 0) - battery (2, 1, 0, 2) - PV (0, 1, 2, 0)
        = (4.833, 2.833, 0, 0) kW: one hour above 4 kW, 0.833 kWh above, peak 4.833 kW.
    """
    site = make_site(
        connections=[{"id": "T1", "rated_kva": 4, "power_factor": 1.0}],
        households=[household("h1")],
        pv_arrays=[{"id": "pv", "connection": "T1", "household": "h1", "kwp": 2}],
        batteries=[
            {
                "id": "b",
                "connection": "T1",
                "household": "h1",
                "capacity_kwh": 10,
                "charge_kw": 2,
                "discharge_kw": 2,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
                "soc_min": 0.0,
                "initial_soc": 0.5,
            }
        ],
        ev_chargers=[{"id": "c", "connection": "T1", "max_kw": 4}],
        ev_sessions=[
            {
                "id": "s",
                "charger": "c",
                "arrival": "2026-01-14T00:00:00+00:00",
                "departure": "2026-01-14T04:00:00+00:00",
                "energy_needed_kwh": 6,
            }
        ],
        heat_pumps=[{"id": "hp", "connection": "T1", "electric_kw": 3, "store_kwh": 0, "store_loss_per_h": 0}],
    )
    inputs = make_inputs(site, 4, load={"h1": [2] * 4}, pv={"pv": [0, 0.5, 1, 0]}, heat={"hp": [3, 3, 0, 0]})
    status, _, kpis, _ = evaluate_site(site, inputs, [(inputs.index, 1.0)], SolveOptions(threads=1))
    assert status in ("optimal", "optimal_with_violations")
    assert kpis["uncontrolled_peak_import_kw.T1"] == pytest.approx(2 + 4 + 3 / 3.6 - 2)
    assert kpis["uncontrolled_hours_above_limit_h.T1"] == 1.0
    assert kpis["uncontrolled_energy_above_limit_kwh"] == pytest.approx(3 / 3.6)
    assert kpis["uncontrolled_import_kwh"] == pytest.approx((4 + 3 / 3.6) + (3 + 3 / 3.6 - 1))
    # the plan spreads the EV and uses the battery: nothing above the limit
    assert kpis["hours_above_limit_h"] == 0.0 and kpis["peak_import_kw.T1"] <= 4 + 1e-6


def spec_dict(site_path: Path, **parts: Any) -> dict[str, Any]:
    return {"name": "s", "baseline": str(site_path), **parts}


def test_weighted_windows_aggregate(small_site_path: Path) -> None:
    a = {"start": "2026-01-14T16:00:00+00:00", "hours": 2, "weight": 1}
    b = {"start": "2026-01-14T19:00:00+00:00", "hours": 2, "weight": 3}
    spec = scenario_from_dict(spec_dict(small_site_path, representative_days=[a, b]))
    ev = evaluate(spec)
    assert ev.ok, ev.message
    wa, wb = ev.windows
    assert (wa["weight"], wb["weight"]) == (1, 3)
    for key in ("cost_eur", "import_kwh", "co2_kg", "uncontrolled_energy_above_limit_kwh", "hours"):
        assert ev.kpis[key] == pytest.approx(wa[key] + 3 * wb[key])
    assert ev.kpis["peak_import_kw.T2"] == max(wa["peak_import_kw.T2"], wb["peak_import_kw.T2"])
    assert ev.kpis["self_sufficiency"] == pytest.approx(
        1 - (wa["import_kwh"] + 3 * wb["import_kwh"]) / (wa["consumption_kwh"] + 3 * wb["consumption_kwh"])
    )
    assert set(ev.kpis) >= REQUIRED
    # a period equal to window a gives window a's figures
    alone = evaluate(scenario_from_dict(spec_dict(small_site_path, period={"start": a["start"], "hours": 2})))
    assert alone.kpis["cost_eur"] == pytest.approx(wa["cost_eur"])


def test_window_outside_the_inputs_is_reported(small_site_path: Path) -> None:
    outside = {"start": "2026-07-01T00:00:00+00:00", "hours": 24, "weight": 10}
    ev = evaluate(scenario_from_dict(spec_dict(small_site_path, representative_days=[outside])))
    assert ev.status == "invalid"
    assert "representative_days[0]: not covered by the inputs" in ev.message


def test_run_scenario_compares_and_exports(small_site_path: Path, tmp_path: Path) -> None:
    raw = spec_dict(
        small_site_path,
        name="ev_and_battery",
        period=EVENING,
        edits=[
            {"kind": "add_evs", "count": 6, "connection": "T2", "seed": 4},
            {"kind": "add_battery", "connection": "T2", "capacity_kwh": 60, "charge_kw": 30},
        ],
    )
    result = run_scenario(raw)  # plain data, as the API will pass it
    assert result.baseline.ok and result.scenario.ok
    assert set(result.scenario.kpis) >= REQUIRED
    cmp = result.comparison()
    row = cmp[cmp["kpi"] == "uncontrolled_peak_import_kw.T2"].iloc[0]
    assert row["delta"] == pytest.approx(row["value"] - row["baseline"])
    assert row["delta_rel"] == pytest.approx(row["delta"] / row["baseline"])
    assert row["delta"] > 0  # six more uncontrolled wallboxes on T2
    files = write_results([result.baseline, result.scenario], tmp_path, "baseline")
    assert sorted(f.name for f in files) == [
        "comparison.csv",
        "comparison.parquet",
        "results.csv",
        "results.parquet",
    ]
    for suffix in (".parquet", ".csv"):
        table = read_table(tmp_path / f"results{suffix}")
        assert list(table["scenario"]) == ["baseline", "ev_and_battery"]
        again = compare_rows(table, "baseline")
        np.testing.assert_allclose(again["value"].to_numpy(float), cmp["value"].to_numpy(float), rtol=1e-12)
    stored = pd.read_parquet(tmp_path / "comparison.parquet")
    assert set(stored.columns) == {"scenario", "status", "kpi", "baseline", "value", "delta", "delta_rel"}


def test_invalid_edit_is_a_status_not_an_exception(small_site_path: Path, small: tuple[Site, SiteInputs]) -> None:
    raw = spec_dict(small_site_path, period=EVENING, edits=[{"kind": "scale_pv", "scale": 2, "connection": "T9"}])
    result = run_scenario(raw)
    assert result.scenario.status == "invalid"
    assert "edits[0].connection: unknown connection point 'T9'" in result.scenario.message


def test_results_are_json_ready(small_site_path: Path) -> None:
    import json

    raw = spec_dict(
        small_site_path, period={"start": EVENING["start"], "hours": 1}, edits=[{"kind": "scale_pv", "scale": 3}]
    )
    data = run_scenario(raw).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert data["scenario"]["status"] == "optimal" and "comparison" in text
    assert {r["kpi"] for r in data["comparison"]} >= REQUIRED


def test_failed_solve_is_a_status(small_site_path: Path) -> None:
    raw = spec_dict(small_site_path, period=EVENING, solver={"time_limit_s": 1e-9})
    ev = evaluate(scenario_from_dict(raw))
    assert ev.status == "failed" and "HiGHS ended with" in ev.message and ev.kpis == {}
