"""The closed-loop simulator: determinism for a seed, non-compliance visible, and a hand-checkable
case where control removes an overload that the uncontrolled site has."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from grid import demo
from grid.domain import EVSession, load_site
from grid.series import SiteInputs
from grid.sim.devices import Fleet
from grid.sim.report import figures
from grid.sim.run import (
    Outcome,
    SimConfig,
    World,
    closed_loop,
    open_store,
    perfect,
    prepare,
    template_path,
    uncontrolled,
)
from grid.sim.truth import Truth
from grid.timeindex import horizon_index


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo quarter of 30 households (one transformer pair, scaled)."""
    return demo.generate_demo(tmp_path_factory.mktemp("small"), n_households=30)


def _config(site: Path, out: Path, **kw: object) -> SimConfig:
    base = {"days": 0.5, "history": False, "replan_every_min": 60, "out_dir": out, "seed": 7}
    return SimConfig(site_path=site, **{**base, **kw})  # type: ignore[arg-type]


def _closed(config: SimConfig) -> tuple[World, Outcome]:
    world = prepare(config)
    engine = open_store(world)
    try:
        return world, closed_loop(world, engine)
    finally:
        engine.dispose()


def test_same_seed_same_run(small_site: Path, tmp_path: Path) -> None:
    """Two closed loops with the same seed (through the store, forecasts, faults, noise and
    non-compliance) realise the same flows and the same report figures."""
    w1, a = _closed(_config(small_site, tmp_path / "a", compliance=0.8))
    w2, b = _closed(_config(small_site, tmp_path / "b", compliance=0.8))
    assert a.runs == b.runs == 12
    np.testing.assert_array_equal(a.flow_kw, b.flow_kw)
    fa, fb = figures(w1, a).as_dict(), figures(w2, b).as_dict()
    for key in ("seconds", "plan_seconds", "counts"):
        fa.pop(key), fb.pop(key)
    assert fa == fb
    assert a.counts["readings_accepted"] > 0 and a.counts["telemetry_accepted"] > 0
    # another seed: another truth
    _, c = _closed(_config(small_site, tmp_path / "c", compliance=0.8, seed=8))
    assert not np.array_equal(a.flow_kw, c.flow_kw)


def test_no_compliance_is_uncontrolled(small_site: Path, tmp_path: Path) -> None:
    """With compliance 0 no device follows its set-points: the closed loop realises exactly the
    uncontrolled flows, while full compliance moves them."""
    world, none = _closed(_config(small_site, tmp_path / "none", compliance=0.0, forecasts="perfect"))
    free = uncontrolled(world)
    np.testing.assert_allclose(none.flow_kw, free.flow_kw, atol=1e-12)
    _, full = _closed(_config(small_site, tmp_path / "full", compliance=1.0, noise_sd=0.0, forecasts="perfect"))
    assert np.abs(full.flow_kw - free.flow_kw).max() > 1.0


def test_device_without_compliance_ignores_setpoint(small_site: Path) -> None:
    site = load_site(small_site)
    bat = site.batteries[0]
    fleet = Fleet(site, 0.25, {bat.id: False}, 0.0, np.random.default_rng(0))
    n_h, n_pv, n_hp = len(site.households), len(site.pv_arrays), len(site.heat_pumps)
    r = fleet.step({bat.id: bat.charge_kw}, np.zeros(n_h), np.zeros(n_pv), np.zeros(n_hp), 5.0)
    # its household draws nothing and has no PV: greedy self-consumption idles
    assert r.battery_kw[0] == 0.0
    fleet.compliant[bat.id] = True
    r = fleet.step({bat.id: bat.charge_kw}, np.zeros(n_h), np.zeros(n_pv), np.zeros(n_hp), 5.0)
    assert r.battery_kw[0] == pytest.approx(bat.charge_kw)


START = pd.Timestamp("2026-01-14T12:00:00Z")


def _tiny_world(tmp_path: Path) -> World:
    """One 10 kW transformer, one household at 5 kW flat, one 11 kW wallbox; a car arrives at
    18:00 UTC needing 11 kWh by 06:00."""
    doc = {
        "site": {"id": "tiny", "resolution_min": 15},
        "connections": [{"id": "T", "rated_kva": 10.0, "power_factor": 1.0}],
        "households": [{"id": "H", "connection": "T", "meter_id": "M-H", "annual_kwh": 3000.0}],
        "ev_chargers": [{"id": "EV", "connection": "T", "household": "H", "max_kw": 11.0}],
        "tariff": {"import_price_eur_per_kwh": 0.30, "feed_in_price_eur_per_kwh": 0.08},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    site = load_site(path)
    index = horizon_index(START, 48, 15)
    inputs = SiteInputs(
        base_load_kw=pd.DataFrame({"H": 5.0}, index=index),
        pv_kw_per_kwp=pd.DataFrame(index=index),
        heat_demand_kw=pd.DataFrame(index=index),
        temp_degc=pd.Series(5.0, index=index),
    )
    car = EVSession(
        id="car",
        charger="EV",
        arrival=pd.Timestamp("2026-01-14T18:00:00Z").to_pydatetime(),
        departure=pd.Timestamp("2026-01-15T06:00:00Z").to_pydatetime(),
        energy_needed_kwh=11.0,
    )
    config = SimConfig(path, days=1, history=False, forecasts="perfect", compliance=1.0, noise_sd=0.0, out_dir=tmp_path)
    return World(config, path, site, Truth(inputs, [car], START, 96), inputs)


def test_control_removes_the_overload(tmp_path: Path) -> None:
    """Uncontrolled, the car charges at 11 kW from 18:00: 16 kW on a 10 kW transformer for one
    hour = 4 overloaded intervals and (16 - 10) kW x 1 h = 6 kWh above the limit. The closed loop
    spreads the 11 kWh over the night (at most 5 kW of headroom): no overload, nothing missed; so
    does the LP on the truth."""
    world = _tiny_world(tmp_path)
    free = figures(world, uncontrolled(world))
    assert free.overload_intervals == 4
    assert free.kwh_above_by_transformer["T"] == pytest.approx(6.0)
    assert [(o["transformer"], o["kw_above"]) for o in free.overloads] == [("T", pytest.approx(6.0))] * 4
    assert free.overloads[0]["at"].startswith(world.truth.index[0].strftime("%Y-%m-%d"))  # local time, with offset
    assert free.ev_missed_kwh == pytest.approx(0.0)
    engine = open_store(world)
    try:
        closed_out = closed_loop(world, engine)
    finally:
        engine.dispose()
    closed = figures(world, closed_out)
    assert closed.overload_intervals == 0
    assert closed.ev_missed_kwh == pytest.approx(0.0, abs=0.05)
    assert closed_out.counts["sessions_created"] == 1 and closed_out.counts["sessions_plugged_out"] == 1
    best = figures(world, perfect(world, closed_out))
    assert best.overload_intervals == 0
    # same energy at the same flat price: the costs agree
    assert closed.cost_eur == pytest.approx(best.cost_eur, rel=1e-3)


def test_cli_writes_table_and_report(small_site: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from grid.cli import app

    out = tmp_path / "cli"
    args = ["simulate", "--site", str(small_site), "--days", "0.25", "--no-history", "--forecasts", "perfect"]
    result = CliRunner().invoke(app, [*args, "--replan-every-min", "60", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "overload intervals" in result.output and f"report: {out / 'report.json'}" in result.output
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(doc["results"]) == {"uncontrolled", "closed", "perfect"}
    assert doc["results"]["closed"]["runs"] == 6
    assert doc["cost_ratio_vs_perfect"] > 0
    bad = CliRunner().invoke(app, ["simulate", "--site", str(small_site), "--forecasts", "psychic", "--out", str(out)])
    assert bad.exit_code == 2 and "--forecasts" in bad.output


def test_transformer_meters_report_the_simulated_flow(small_site: Path, tmp_path: Path) -> None:
    """Each connection's transformer meter reports the flow the simulator realised, through the
    ingest path: the realised KPIs measure every interval's import, equal to the flow (registers
    of 3 decimals)."""
    from grid.schedule.performance import evaluate_intervals, performance_kpis

    world = prepare(_config(small_site, tmp_path / "meters", faults=False))
    engine = open_store(world)
    try:
        out = closed_loop(world, engine)
        start = world.truth.start
        end = start + pd.Timedelta(minutes=15) * world.truth.steps
        evaluate_intervals(engine, world.site.id, start, end, now=end)
        kpis = performance_kpis(engine, world.site.id, start, end)
    finally:
        engine.dispose()
    dt_h, steps = 0.25, world.truth.steps
    assert sorted(kpis["connections"]) == sorted(c.id for c in world.site.connections)
    for i, c in enumerate(world.site.connections):
        got = kpis["connections"][c.id]
        # without a meter history the first interval has no reading at its start: missing, not 0
        assert (got["measured_intervals"], got["missing_intervals"]) == (steps - 1, 1), got
        flow = out.flow_kw[i, 1:]
        expected_kwh = float(np.maximum(flow, 0.0).sum() * dt_h)
        assert got["import_kwh"] == pytest.approx(expected_kwh, abs=0.001 * steps), (c.id, got)
        assert got["peak_import_kw"] == pytest.approx(float(flow.max()), abs=0.01)


def test_meter_feeds_continue_the_stored_registers(small_site: Path, tmp_path: Path) -> None:
    """The simulated meters start from the newest stored reading of each register (0 without one),
    whatever order the readings were stored in."""
    from grid.ingest.pipeline import ingest
    from grid.ingest.records import records_frame
    from grid.ingest.report import Source
    from grid.sim.feeds import Feeds
    from grid.store.catalog import EXPORT_REGISTER, IMPORT_REGISTER

    world = prepare(_config(small_site, tmp_path / "registers"))
    engine = open_store(world)
    try:
        h0, h1 = world.site.households[:2]
        at = [(world.truth.start - pd.Timedelta(minutes=15) * k).isoformat() for k in range(3)]
        rows = [  # not in time order; h1's register was reset: its newest reading is not its largest
            (h0.meter_id, IMPORT_REGISTER, at[0], "120.500"),
            (h0.meter_id, IMPORT_REGISTER, at[2], "120.100"),
            (h0.meter_id, IMPORT_REGISTER, at[1], "120.300"),
            (h1.meter_id, EXPORT_REGISTER, at[0], "0.250"),
            (h1.meter_id, EXPORT_REGISTER, at[1], "0.000"),
            (h1.meter_id, EXPORT_REGISTER, at[2], "7.000"),
        ]
        records = [{"meter_id": m, "obis": o, "timestamp": t, "value": v, "unit": "kWh"} for m, o, t, v in rows]
        ingest(engine, world.site.id, records_frame(records), Source("test", "registers"))
        feeds = Feeds(engine, world.site, np.random.default_rng(1), 4)
    finally:
        engine.dispose()
    got = dict(zip(feeds.meters, feeds.registers_kwh.tolist(), strict=True))
    assert got[(h0.meter_id, IMPORT_REGISTER)] == 120.5
    assert got[(h1.meter_id, EXPORT_REGISTER)] == 0.25
    assert got[(h0.meter_id, EXPORT_REGISTER)] == 0.0
    assert sum(v != 0.0 for v in got.values()) == 2


def test_template_follows_the_history_it_holds(small_site: Path, tmp_path: Path) -> None:
    """The template store is named by its history file's sha256: a changed household (so another
    history) makes a new template and removes the old one, instead of copying a store that holds
    the older history (as the unkeyed template-history.sqlite did)."""
    site_dir = tmp_path / "site"
    shutil.copytree(small_site.parent, site_dir)
    site_path = site_dir / small_site.name
    config = _config(site_path, tmp_path / "out", history=True, days=0.25)
    first = template_path(config)
    open_store(prepare(config)).dispose()
    assert first.exists() and first.name.startswith("template-history-")
    assert template_path(config) == first  # unchanged inputs: the same template, not rebuilt
    text = site_path.read_text(encoding="utf-8")
    assert "annual_kwh: 3610.0" in text  # H001 of the small demo site: another yearly energy
    site_path.write_text(text.replace("annual_kwh: 3610.0", "annual_kwh: 4610.0", 1), encoding="utf-8")
    second = template_path(config)
    assert second != first
    open_store(prepare(config)).dispose()
    assert second.exists() and not first.exists()
