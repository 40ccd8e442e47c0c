"""Scenario edits accept zero: a battery resized to 0 kW / 0 kWh, a zero-feed-in transformer, a
transformer taken out of service (0/0); the edited site plans."""

from __future__ import annotations

from grid.domain import Site
from grid.scenarios.edits import apply_edits
from grid.scenarios.spec import scenario_from_dict
from grid.series import SiteInputs
from grid.timeindex import horizon_index
from models.solve import plan_site


def test_zero_sizes_and_limits_are_valid_edits(small: tuple[Site, SiteInputs]) -> None:
    site, inputs = small
    battery = site.batteries[0].id
    edits = [
        {"kind": "resize_battery", "id": battery, "capacity_kwh": 0, "charge_kw": 0, "discharge_kw": 0},
        {"kind": "set_transformer", "connection": "T1", "export_limit_kw": 0},
        {"kind": "set_transformer", "connection": "T2", "import_limit_kw": 0, "export_limit_kw": 0},
        {"kind": "add_battery", "connection": "T1", "capacity_kwh": 0},
    ]
    spec = scenario_from_dict({"name": "zero", "baseline": "x.yaml", "edits": edits})
    new, new_inputs = apply_edits(site, inputs, list(spec.edits))
    bat = next(b for b in new.batteries if b.id == battery)
    assert (bat.capacity_kwh, bat.charge_kw, bat.discharge_kw) == (0.0, 0.0, 0.0)
    assert new.connection("T1").limit_export_kw == 0.0
    assert (new.connection("T2").limit_import_kw, new.connection("T2").limit_export_kw) == (0.0, 0.0)
    index = horizon_index(new_inputs.index[0], 6, new.site.resolution_min)
    plan = plan_site(new, new_inputs, index)
    assert plan.status in ("optimal", "optimal_with_violations")
    assert max(plan.assets[battery]["charge_kw"]) == 0.0 and max(plan.assets[battery]["discharge_kw"]) == 0.0
    assert max(plan.connections["T1"]["export_kw"]) <= 1e-6 or any(
        v.kind == "export_limit_exceeded" for v in plan.violations
    )
