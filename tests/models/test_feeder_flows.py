"""The plan's per-feeder net draw (``connections[cid]["feeders"][fid]["net_kw"]``) on hand cases."""

from __future__ import annotations

import pytest

from tests.models.sites import household, make_inputs, make_site, run


def test_feeder_draw_is_its_households_load_also_beyond_its_limit() -> None:
    # T1 has feeders F1 (2 kW: its 3 kW household overloads it by 1 kW, nothing can help) and F2
    # (100 kW); h1 draws 3 kW on F1, h2 4 kW on F2, h3 1 kW on no feeder. Expected per hour:
    # F1 = 3 (limit breached by 1, reported as a violation), F2 = 4, T1 = 3 + 4 + 1 = 8.
    site = make_site(
        connections=[
            {
                "id": "T1",
                "rated_kva": 1000,
                "power_factor": 1.0,
                "feeders": [
                    {"id": "F1", "import_limit_kw": 2, "export_limit_kw": 2},
                    {"id": "F2", "import_limit_kw": 100, "export_limit_kw": 100},
                ],
            }
        ],
        households=[household("h1", feeder="F1"), household("h2", feeder="F2"), household("h3")],
    )
    plan = run(site, make_inputs(site, 2, load={"h1": [3, 3], "h2": [4, 4], "h3": [1, 1]}))
    conn = plan.to_dict()["connections"]["T1"]
    assert conn["import_kw"] == pytest.approx([8, 8])
    feeders = conn["feeders"]
    assert feeders["F1"]["net_kw"] == pytest.approx([3, 3], abs=1e-6)
    assert feeders["F2"]["net_kw"] == pytest.approx([4, 4], abs=1e-6)
    assert (feeders["F1"]["limit_import_kw"], feeders["F2"]["limit_export_kw"]) == (2, 100)
    assert any(v.kind == "feeder_import_limit_exceeded" for v in plan.violations)


def test_no_feeders_no_entry() -> None:
    site = make_site(households=[household("h1")])
    plan = run(site, make_inputs(site, 2, load={"h1": [1, 1]}))
    assert "feeders" not in plan.to_dict()["connections"]["T1"]
