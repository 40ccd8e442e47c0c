"""Scenario and sweep files: validation messages name the edit and the field; the shipped examples load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grid.domain import Site
from grid.errors import InputErrors
from grid.scenarios.edits import apply_edits
from grid.scenarios.spec import fill, load_scenario, load_sweep, scenario_from_dict, sweep_from_dict
from grid.series import SiteInputs

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "scenarios"


def messages(exc: InputErrors) -> list[str]:
    return [e.message for e in exc.errors]


def spec(**parts: Any) -> dict[str, Any]:
    return {"name": "s", "baseline": "site.yaml", **parts}


def test_field_errors_name_the_edit_and_field() -> None:
    edits = [
        {"kind": "scale_pv", "scale": 2},
        {"kind": "add_battery", "connection": "T2", "capacity_kwh": 100},
        {"kind": "scale_pv", "scale": -1},
        {"kind": "add_evs", "count": -3},
        {"kind": "resize_battery", "id": "B1"},
        {"kind": "make_coffee"},
    ]
    with pytest.raises(InputErrors) as err:
        scenario_from_dict(spec(edits=edits))
    got = messages(err.value)
    assert "edits[2].scale: must be > 0, got -1" in got
    assert "edits[3].count: must be >= 0, got -3" in got
    assert any(m.startswith("edits[4]: give scale or at least one of capacity_kwh") for m in got)
    assert any(m.startswith("edits[5]") and "make_coffee" in m for m in got)
    assert len(got) == 4


def test_reference_errors_name_the_edit(small: tuple[Site, SiteInputs]) -> None:
    site, inputs = small
    spec_ = scenario_from_dict(
        spec(
            edits=[
                {"kind": "set_transformer", "connection": "T9", "rated_kva": 250},
                {"kind": "resize_battery", "id": "nope", "scale": 2},
                {"kind": "add_pv", "connection": "T1", "kwp": 10, "household": "H999"},
                {"kind": "add_evs", "count": 10_000, "connection": "T2"},
                {"kind": "set_flex_contract", "value": False, "ids": ["EV-nope"], "devices": ["ev_charger"]},
            ]
        )
    )
    with pytest.raises(InputErrors) as err:
        apply_edits(site, inputs, list(spec_.edits))
    got = messages(err.value)
    assert got[0] == "edits[0].connection: unknown connection point 'T9'"
    assert got[1] == "edits[1].id: unknown battery 'nope'"
    assert got[2] == "edits[2].household: unknown household 'H999'"
    assert got[3].startswith("edits[3].count: only ") and got[3].endswith("without a wallbox, got 10000")
    assert got[4].startswith("edits[4].ids: unknown device(s)")


def test_period_rules() -> None:
    with pytest.raises(InputErrors) as err:
        scenario_from_dict(
            spec(period={"hours": 4}, representative_days=[{"start": "2026-01-14T00:00+00:00", "hours": 24}])
        )
    assert "give period or representative_days, not both" in str(err.value)
    with pytest.raises(InputErrors) as err:
        scenario_from_dict(spec(period={"start": "2026-01-14T00:00:00", "hours": 4}))
    assert "period.start: must include a UTC offset" in str(err.value)
    with pytest.raises(InputErrors) as err:
        scenario_from_dict(spec(representative_days=[{"start": "2026-01-14T00:00+00:00", "hours": 24, "weight": 0}]))
    assert "representative_days[0].weight: must be > 0, got 0" in messages(err.value)


def test_sweep_placeholders_must_match_parameters() -> None:
    edits = [{"kind": "add_battery", "connection": "T2", "capacity_kwh": "${kwh}"}]
    with pytest.raises(InputErrors) as err:
        sweep_from_dict(spec(edits=edits, parameters={"count": [1]}))
    assert "placeholder(s) without a value: kwh" in str(err.value)
    with pytest.raises(InputErrors) as err:
        sweep_from_dict(spec(edits=edits, parameters={"kwh": [1], "extra": [2]}))
    assert "parameter(s) used by no edit: extra" in str(err.value)
    with pytest.raises(InputErrors) as err:
        sweep_from_dict(spec(edits=edits, parameters={"kwh": []}))
    assert "parameters.kwh must list at least one value" in str(err.value)


def test_fill_keeps_the_type_of_a_whole_placeholder() -> None:
    template = {"a": "${x}", "b": ["id-${x}", {"c": "${y}"}], "d": 3}
    assert fill(template, {"x": 500, "y": [1, 2]}) == {"a": 500, "b": ["id-500", {"c": [1, 2]}], "d": 3}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate(path: Path) -> None:
    loaded = load_sweep(path) if "sweep" in path.name else load_scenario(path)
    assert loaded.baseline_path.exists()
