"""`grid fleet generate`: deterministic, within its ranges, every site valid, congestion where it
says, and a generated site plans (HiGHS) into a plan that keeps the invariants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grid.demo import uncontrolled_load_kw
from grid.domain import load_site
from grid.fleet.generate import FleetSite, generate_fleet, write_fleet
from grid.series import load_inputs

SEED = 1
N_SITES = 12


@pytest.fixture(scope="module")
def fleet() -> list[FleetSite]:
    return generate_fleet(N_SITES, SEED)


def same(a: FleetSite, b: FleetSite) -> bool:
    if a.description != b.description or a.congested != b.congested or a.series.keys() != b.series.keys():
        return False
    return all(a.series[k].equals(b.series[k]) for k in a.series)


def test_same_seed_same_fleet_and_a_site_does_not_depend_on_the_fleet_size(fleet: list[FleetSite]) -> None:
    again = generate_fleet(3, SEED)
    assert all(same(x, y) for x, y in zip(again, fleet[:3], strict=True))
    other = generate_fleet(3, SEED + 1)
    assert not any(same(x, y) for x, y in zip(other, fleet[:3], strict=True))


def test_sizes_and_shares_are_within_their_ranges_and_vary(fleet: list[FleetSite]) -> None:
    homes = [len(s.description["households"]) for s in fleet]
    trafos = [len(s.description["connections"]) for s in fleet]
    assert all(50 <= n <= 600 for n in homes) and all(1 <= n <= 3 for n in trafos)
    assert len(set(trafos)) == 3 and max(homes) - min(homes) > 200
    assert [s.site_id for s in fleet] == [f"fleet-{k:04d}" for k in range(1, N_SITES + 1)]
    shares = {
        kind: [len(s.description[kind]) / len(s.description["households"]) for s in fleet]
        for kind in ("pv_arrays", "batteries", "ev_chargers", "heat_pumps")
    }
    # site shares 5-60 % PV, 0-30 % batteries, 2-35 % wallboxes, 3-45 % heat pumps, each x0.6-1.4 per
    # transformer (a few homes have two wallboxes): the realised shares stay inside generous bounds
    assert all(0.0 < x <= 0.85 for x in shares["pv_arrays"])
    assert all(0.0 <= x <= 0.45 for x in shares["batteries"])
    assert all(0.0 < x <= 0.55 for x in shares["ev_chargers"])
    assert all(0.0 < x <= 0.65 for x in shares["heat_pumps"])
    for kind, values in shares.items():
        assert max(values) > 2 * min(values) + 0.02, f"{kind} shares hardly vary: {values}"


def test_every_site_validates_and_its_limits_are_set_from_its_uncontrolled_peak(fleet: list[FleetSite]) -> None:
    congested_sites = 0
    for fs in fleet:
        site = fs.site()
        inputs = fs.inputs(site)
        assert len(inputs.index) == 192 and inputs.index[0] == pd.Timestamp("2026-01-13T23:00:00Z")
        # every asset has its series, finite and non-negative where a load (the planner's own check)
        inputs.for_site(site, inputs.index)
        load = uncontrolled_load_kw(site, inputs)
        for conn in site.connections:
            peak = load[conn.id].max()
            if conn.id in fs.congested:
                assert conn.limit_import_kw < peak, (fs.site_id, conn.id)
                # 75-92 % of the peak, rounded down to 5 kVA
                assert conn.limit_import_kw >= 0.75 * peak - 5 * conn.power_factor
            else:
                assert conn.limit_import_kw > 1.1 * peak, (fs.site_id, conn.id)
            for feeder in conn.feeders:
                assert feeder.import_limit_kw >= load[feeder.id].max()
        congested_sites += bool(fs.congested)
    assert 0 < congested_sites < len(fleet)
    assert all(fleet[k].congested for k in range(1, N_SITES, 3))  # every third site, by design


def test_written_files_read_back_to_the_same_site_and_inputs(fleet: list[FleetSite], tmp_path: Path) -> None:
    small = min(fleet[:4], key=lambda s: len(s.description["households"]))
    [path] = write_fleet([small], tmp_path, SEED)
    site = load_site(path)
    assert site == small.site().model_copy(update={"base_dir": path.parent})
    from_files, in_memory = load_inputs(site), small.inputs()
    pd.testing.assert_frame_equal(from_files.base_load_kw, in_memory.base_load_kw, check_freq=False)
    pd.testing.assert_frame_equal(from_files.heat_demand_kw, in_memory.heat_demand_kw, check_freq=False)
    pd.testing.assert_frame_equal(from_files.pv_kw_per_kwp, in_memory.pv_kw_per_kwp, check_freq=False)
    assert np.array_equal(from_files.price_eur_per_kwh.to_numpy(), in_memory.price_eur_per_kwh.to_numpy())
    summary = json.loads((tmp_path / "fleet.json").read_text())
    assert summary["seed"] == SEED and summary["sites"][0]["site"] == small.site_id


def test_a_generated_site_plans_with_highs_into_a_valid_plan(fleet: list[FleetSite]) -> None:
    from models.solve import SolveOptions, plan_site
    from models.tables import build_tables
    from tests.models.invariants import check_plan

    small = min((s for s in fleet if s.congested), key=lambda s: len(s.description["households"]))
    site = small.site()
    inputs = small.inputs(site)
    index = inputs.index[:96]
    plan = plan_site(site, inputs, index, SolveOptions())
    check_plan(plan, build_tables(site, inputs.for_site(site, index), index))
    # the evening peak of a congested transformer is brought under its limit by the flexibility
    for cid in small.congested:
        conn = plan.connections[cid]
        assert max(conn["import_kw"]) <= conn["limit_import_kw"][0] + 1e-6 or plan.violations


def test_the_cli_writes_the_fleet(tmp_path: Path) -> None:
    from grid.cli import app

    result = CliRunner().invoke(app, ["fleet", "generate", "--sites", "2", "--seed", "5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 sites" in result.output
    for k in (1, 2):
        folder = tmp_path / f"fleet-{k:04d}"
        assert sorted(p.name for p in folder.iterdir()) == [
            "base_load.csv",
            "heat_demand.csv",
            "prices.csv",
            "pv_availability.csv",
            "site.yaml",
            "weather.csv",
        ]
        assert load_site(folder / "site.yaml").id == f"fleet-{k:04d}"
