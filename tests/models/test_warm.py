"""Re-using a built model (models.warm): a refreshed model gives the optimum a fresh build gives,
for every field the model holds as a mutable parameter; anything else changes the structure key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from grid.demo import generate_demo
from grid.domain import EVSession, Site, load_site
from grid.series import SiteInputs, load_inputs
from grid.timeindex import horizon_index
from models.dispatch import build_model
from models.solve import SolveOptions, SolveOutcome, plan_site, solve_model, solve_tables
from models.tables import Tables, build_tables
from models.warm import PARAM_FIELDS, WarmPlanner, structure_key
from tests.models.invariants import check_plan

#: a spring day: heat demand, and PV surplus that non-contract batteries request to store
DAY = "2026-04-15T00:00:00+02:00"
START = pd.Timestamp("2026-04-15T07:00:00Z")
HOURS = 12.0
#: fields that the model does not use at all (read by the plan's KPIs only)
UNUSED = {
    "index",
    "prices.energy_eur_per_kwh",
    "prices.grid_fee_eur_per_kwh",
    "prices.co2_g_per_kwh",
    "prices.spot_eur_per_kwh",  # reaches the model only through pv.unpaid
}
#: parameter fields that are not amounts (steps, flags): the rolling test below moves them
#: not numbers to scale (ids, flags) or times: a car's arrival, departure and consent are tested
#: by the rolling and arrival tests below
NOT_SCALED = {
    "index",
    "ev.departure_step",
    "ev.departs_in_horizon",
    "ev.session_ids",
    "ev.v2g_consent",
    "ev.arrival_s",
    "ev.departure_s",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, SiteInputs]:
    path = generate_demo(tmp_path_factory.mktemp("warm"), n_households=40, start=DAY, hours=24)
    site = load_site(Path(path)).model_copy(deep=True)
    for battery in site.batteries[:3]:  # home batteries without a contract follow a requested profile
        battery.flex_contract = False
    # a hard-limit transformer (mutable bounds of unmet load and spill), PV under negative-price rules
    # (fixed and curtailable arrays, mutable paid/unpaid coefficients) and negative day-ahead prices
    site.connections[-1].hard_limits = True
    for k, array in enumerate(site.pv_arrays[:6]):
        array.negative_price_rule = "quarter_hour" if k < 4 else "1h"
        array.curtailable = k % 2 == 1
    inputs = load_inputs(site)
    assert inputs.price_eur_per_kwh is not None
    noon = (inputs.index.hour >= 10) & (inputs.index.hour < 13)
    inputs.spot_eur_per_kwh = inputs.price_eur_per_kwh.where(~noon, -0.05)
    # a planning reserve under every limit (a forecast band), larger in the evening
    evening = np.where((inputs.index.hour >= 16) & (inputs.index.hour < 20), 6.0, 2.0)
    inputs.reserve_kw = pd.DataFrame({c.id: evening for c in site.connections}, index=inputs.index)
    return site, inputs


def tables_at(demo: tuple[Site, SiteInputs], start: pd.Timestamp = START) -> Tables:
    site, inputs = demo
    index = horizon_index(start, HOURS, site.site.resolution_min)
    return build_tables(site, inputs.window(index), index)


def perturbed(tables: Tables, path: str, rng: np.random.Generator) -> Tables:
    """`tables` with the field at `path` ("part.field") scaled by random factors in [0.7, 1.3]
    (initial states, requested profiles and the unpaid share of feed-in scaled down only, so that
    they stay within the device's bounds and [0, 1] as ``build_tables`` keeps them)."""
    part, name = path.split(".")
    sub = getattr(tables, part)
    values = np.asarray(getattr(sub, name), dtype=float)
    low, high = (0.7, 1.0) if name in ("initial_kwh", "unpaid") or name.startswith("request") else (0.7, 1.3)
    changed = values * rng.uniform(low, high, size=values.shape)
    return dataclasses.replace(tables, **{part: dataclasses.replace(sub, **{name: changed})})


def test_the_demo_site_has_every_kind_of_parameter(demo: tuple[Site, SiteInputs]) -> None:
    """Guards the test below: every parameter field is non-trivial on this site."""
    tables = tables_at(demo)
    for path in sorted(PARAM_FIELDS - UNUSED - NOT_SCALED):
        part, name = path.split(".")
        assert np.abs(np.asarray(getattr(getattr(tables, part), name), dtype=float)).sum() > 0, path
    assert (~tables.batteries.flex).any() and (~tables.heat_pumps.flex).any() and tables.dimming_groups


def lp_arrays(outcome: SolveOutcome) -> dict[str, np.ndarray]:
    """The LP exactly as HiGHS holds it: costs, bounds and the column-wise matrix (entries of each
    column in row order: a mutable coefficient that was 0 and is set later is appended to its
    column by HiGHS, the same matrix in another order)."""
    lp = outcome.solver.highs.getLp()
    a = lp.a_matrix_
    names = ("col_cost_", "col_lower_", "col_upper_", "row_lower_", "row_upper_")
    out = {name: np.asarray(getattr(lp, name)) for name in names}
    start, index, value = np.asarray(a.start_), np.asarray(a.index_), np.asarray(a.value_)
    column = np.repeat(np.arange(len(start) - 1), np.diff(start))
    order = np.lexsort((index, column))
    out.update(start=start, index=index[order], value=value[order])
    return out


@pytest.mark.parametrize("path", sorted(PARAM_FIELDS - NOT_SCALED))
def test_refreshed_model_is_the_fresh_model(demo: tuple[Site, SiteInputs], path: str) -> None:
    """Refreshing a built model from changed tables gives HiGHS exactly the LP a fresh build gives
    (so the change reached the solver), and the same optimum."""
    base = tables_at(demo)
    changed = perturbed(base, path, np.random.default_rng(7))
    assert structure_key(changed) == structure_key(base), "a scaled parameter must not change the structure"
    _, dm, outcome = solve_tables(base)
    assert outcome.ok
    before = lp_arrays(outcome)
    warm, _, warm_outcome = solve_tables(changed, warm=(dm, outcome.solver))
    cold = solve_model(build_model(changed))
    assert warm_outcome.ok and cold.ok and warm.solver["warm_start"]
    refreshed, fresh = lp_arrays(warm_outcome), lp_arrays(cold)
    for name, values in fresh.items():
        np.testing.assert_allclose(refreshed[name], values, rtol=1e-12, atol=1e-12, err_msg=name)
    moved = any(not np.array_equal(before[n], v) for n, v in fresh.items())
    assert moved == (path not in UNUSED), path
    assert warm.objective_eur == pytest.approx(cold.objective_eur, rel=1e-7, abs=1e-6)


def test_a_moved_horizon_refreshes_to_the_fresh_model(demo: tuple[Site, SiteInputs]) -> None:
    """Rolling by one interval at a time: while the same EV sessions overlap the horizon, the kept
    model is refreshed (plugged-in steps, departures, energy due move) and is exactly the fresh LP."""
    kept: tuple[Any, Any] | None = None
    key = ""
    refreshed = 0
    for k in range(12):
        tables = tables_at(demo, START + pd.Timedelta(minutes=15 * k))
        new_key = structure_key(tables)
        if kept is not None and new_key == key:
            plan, dm, outcome = solve_tables(tables, warm=kept)
            fresh = solve_model(build_model(tables))
            assert outcome.ok and fresh.ok and plan.solver["warm_start"]
            for name, values in lp_arrays(fresh).items():
                np.testing.assert_allclose(lp_arrays(outcome)[name], values, rtol=1e-12, atol=1e-12, err_msg=name)
            assert plan.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-7, abs=1e-6)
            check_plan(plan, tables)
            refreshed += 1
        else:
            plan, dm, outcome = solve_tables(tables)
        kept, key = (dm, outcome.solver), new_key
    assert refreshed >= 4 and len(tables.ev.session_ids) > 0


def _fields(obj: Any, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and f.name != "at":
            out += _fields(value, path + ".")
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and np.isfinite(value).any():
            out.append(path)
    return out


def test_every_other_numeric_field_is_structure(demo: tuple[Site, SiteInputs]) -> None:
    base = tables_at(demo)
    key = structure_key(base)
    others = [p for p in _fields(base) if p not in PARAM_FIELDS]
    assert "batteries.capacity_kwh" in others and "ev.max_kw" in others
    for path in others:
        part, name = path.split(".")
        sub = getattr(base, part)
        shifted = dataclasses.replace(sub, **{name: getattr(sub, name) + 0.5})
        assert structure_key(dataclasses.replace(base, **{part: shifted})) != key, path


def test_planner_reuses_the_model_when_only_numbers_change(demo: tuple[Site, SiteInputs]) -> None:
    site, inputs = demo
    index = horizon_index(START, HOURS, site.site.resolution_min)
    planner = WarmPlanner()
    first = planner(site, inputs, index)
    assert first.status == "optimal" and not first.solver["warm_start"]
    # new forecasts for the same horizon: household load +10%, PV -20%
    newer = dataclasses.replace(
        inputs, base_load_kw=inputs.base_load_kw * 1.1, pv_kw_per_kwp=inputs.pv_kw_per_kwp * 0.8
    )
    again = planner(site, newer, index)
    fresh = plan_site(site, newer, index)
    assert again.solver["warm_start"] and planner.warm_runs == 1
    assert again.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-7)
    assert again.objective_eur != pytest.approx(first.objective_eur, rel=1e-6)
    check_plan(again, build_tables(site, newer, index))
    # two hours later the same EV sessions overlap the horizon: the model is refreshed again
    later = horizon_index(START + pd.Timedelta(hours=2), HOURS, site.site.resolution_min)
    moved = planner(site, inputs, later)
    assert moved.solver["warm_start"] and planner.warm_runs == 2
    assert moved.objective_eur == pytest.approx(plan_site(site, inputs, later).objective_eur, rel=1e-7)
    # a session in the horizon cancelled (the car left): its slot empties, the model stays
    gone = tables_at(demo, later[0]).ev.session_ids[0]
    fewer = site.model_copy(update={"ev_sessions": [s for s in site.ev_sessions if s.id != gone]})
    left = planner(fewer, inputs, later)
    assert left.status == "optimal" and left.solver["warm_start"] and planner.cold_runs == 1
    assert left.objective_eur == pytest.approx(plan_site(fewer, inputs, later).objective_eur, rel=1e-7)
    assert all(gone not in a.get("sessions", {}) for a in left.assets.values())
    # the site changed (a charger removed): built anew
    charger = site.ev_chargers[0].id
    edited = site.model_copy(
        update={
            "ev_chargers": site.ev_chargers[1:],
            "ev_sessions": [s for s in site.ev_sessions if s.charger != charger],
        }
    )
    rebuilt = planner(edited, inputs, later)
    assert rebuilt.status == "optimal" and not rebuilt.solver["warm_start"] and planner.cold_runs == 2


def test_a_measured_start_state_keeps_the_model(demo: tuple[Site, SiteInputs]) -> None:
    """Every run starts from measured or estimated states: new initial SoCs and store levels (and
    the "end where you started" targets that follow them) must not force a cold build, and the
    refreshed LP is the fresh one."""
    site, inputs = demo
    base = tables_at(demo)
    moved = site.model_copy(
        update={
            "batteries": [
                b.model_copy(update={"initial_soc": b.soc_min + 0.5 * (b.soc_max - b.soc_min)}) for b in site.batteries
            ],
            "heat_pumps": [h.model_copy(update={"initial_store": 0.37}) for h in site.heat_pumps],
        }
    )
    changed = build_tables(moved, inputs, base.index)
    assert not np.array_equal(changed.batteries.terminal_kwh, base.batteries.terminal_kwh)
    assert structure_key(changed) == structure_key(base)
    _, dm, outcome = solve_tables(base)
    warm, _, warm_outcome = solve_tables(changed, warm=(dm, outcome.solver))
    cold = solve_model(build_model(changed))
    assert warm.solver["warm_start"] and warm_outcome.ok and cold.ok
    for name, values in lp_arrays(cold).items():
        np.testing.assert_allclose(lp_arrays(warm_outcome)[name], values, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_car_that_arrives_takes_a_free_slot_and_the_model_stays(demo: tuple[Site, SiteInputs]) -> None:
    """An arrival (a new session on a charger with a free slot) and a departure change numbers
    only: the kept model is refreshed, its LP is exactly the fresh one, and the car is planned."""
    site, inputs = demo
    index = horizon_index(START, HOURS, site.site.resolution_min)
    base = build_tables(site, inputs, index)
    busy = {base.ev.ids[c] for c, sid in zip(base.ev.session_charger, base.ev.session_ids, strict=True) if sid}
    free = next(c for c in site.ev_chargers if c.id not in busy)
    car = EVSession(
        id="arrived",
        charger=free.id,
        arrival=(START + pd.Timedelta(minutes=50)).to_pydatetime(),
        departure=(START + pd.Timedelta(hours=5)).to_pydatetime(),
        energy_needed_kwh=12.0,
        capacity_kwh=60.0,
        initial_soc=0.2,
    )
    arrived = site.model_copy(update={"ev_sessions": [*site.ev_sessions, car]})
    changed = build_tables(arrived, inputs, index)
    assert structure_key(changed) == structure_key(base)
    _, dm, outcome = solve_tables(base)
    plan, _, warm_outcome = solve_tables(changed, warm=(dm, outcome.solver))
    cold = solve_model(build_model(changed))
    assert plan.solver["warm_start"] and warm_outcome.ok and cold.ok
    for name, values in lp_arrays(cold).items():
        np.testing.assert_allclose(lp_arrays(warm_outcome)[name], values, rtol=1e-12, atol=1e-12, err_msg=name)
    session = plan.assets[free.id]["sessions"]["arrived"]
    assert session["delivered_kwh"] + session["missed_kwh"] == pytest.approx(12.0, abs=1e-6)
    check_plan(plan, changed)


def test_more_sessions_than_slots_at_one_charger_add_slots() -> None:
    """Three short sessions in the horizon at one charger: three slots (a new structure, planned
    as usual), every other charger keeps its two."""
    from tests.models.sites import START as HOUR0
    from tests.models.sites import household, make_inputs, make_site, run

    sessions = [
        {
            "id": f"s{k}",
            "charger": "wb",
            "arrival": (HOUR0 + pd.Timedelta(hours=2 * k)).isoformat(),
            "departure": (HOUR0 + pd.Timedelta(hours=2 * k + 1)).isoformat(),
            "energy_needed_kwh": 5.0,
        }
        for k in range(3)
    ]
    site = make_site(
        households=[household()],
        ev_chargers=[
            {"id": "wb", "connection": "T1", "max_kw": 11.0},
            {"id": "wb2", "connection": "T1", "max_kw": 11.0},
        ],
        ev_sessions=sessions,
    )
    inputs = make_inputs(site, 8, load={"h1": [1.0] * 8})
    tables = build_tables(site, inputs, inputs.index)
    assert tables.ev.session_ids == ["s0", "s1", "s2", "", ""]
    plan = run(site, inputs)
    assert {sid: v["delivered_kwh"] for sid, v in plan.assets["wb"]["sessions"].items()} == pytest.approx(
        {"s0": 5.0, "s1": 5.0, "s2": 5.0}
    )
    assert plan.assets["wb2"]["sessions"] == {}


def test_the_time_limit_is_per_solve_not_per_kept_instance(demo: tuple[Site, SiteInputs]) -> None:
    """HiGHS sums an instance's run time over its solves; a kept model's warm solves must each get
    the whole limit, however long the solves before them took together (before: the solve after
    the sum passed the limit stopped at once with maxTimeLimit)."""
    _plan, dm, outcome = solve_tables(tables_at(demo), SolveOptions(time_limit_s=60.0))
    assert outcome.ok
    limit = 2.0 * float(outcome.solver.highs.getRunTime()) + 0.5  # generous for one solve
    moves = [tables_at(demo, START + pd.Timedelta(minutes=15 * k)) for k in (1, 2)]
    solves = 0
    while float(outcome.solver.highs.getRunTime()) <= 2.0 * limit and solves < 400:
        _plan, dm, outcome = solve_tables(
            moves[solves % 2], SolveOptions(time_limit_s=limit), warm=(dm, outcome.solver)
        )
        assert outcome.ok, (solves, outcome.termination)
        solves += 1
    assert float(outcome.solver.highs.getRunTime()) > 2.0 * limit  # together well past the limit
