"""Each edit changes exactly what it says, and never the baseline (property tests over edits)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid.domain import Site, site_from_dict
from grid.scenarios.edits import apply_edits
from grid.scenarios.spec import ScenarioSpec, scenario_from_dict
from grid.series import SiteInputs

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONNECTIONS = st.sampled_from([None, "T1", "T2"])


def parse(*edits: dict[str, Any]) -> list[Any]:
    spec: ScenarioSpec = scenario_from_dict({"name": "t", "baseline": "x.yaml", "edits": list(edits)})
    return list(spec.edits)


def edit(small: tuple[Site, SiteInputs], *edits: dict[str, Any]) -> tuple[Site, SiteInputs]:
    site, inputs = small
    return apply_edits(site, inputs, parse(*edits))


def dump(site: Site, drop: str | None = None) -> dict[str, Any]:
    data = site.model_dump()
    if drop:
        data.pop(drop)
    return data


def same_inputs(a: SiteInputs, b: SiteInputs) -> None:
    pd.testing.assert_frame_equal(a.base_load_kw, b.base_load_kw)
    pd.testing.assert_frame_equal(a.pv_kw_per_kwp, b.pv_kw_per_kwp)
    pd.testing.assert_frame_equal(a.heat_demand_kw, b.heat_demand_kw)
    pd.testing.assert_series_equal(a.temp_degc, b.temp_degc)
    for x, y in ((a.price_eur_per_kwh, b.price_eur_per_kwh), (a.co2_g_per_kwh, b.co2_g_per_kwh)):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            pd.testing.assert_series_equal(x, y)


@SETTINGS
@given(k=st.floats(0.05, 20.0), where=CONNECTIONS)
def test_scale_pv_multiplies_kwp_and_nothing_else(small: tuple[Site, SiteInputs], k: float, where: str | None) -> None:
    site, inputs = small
    new, new_inputs = edit(small, {"kind": "scale_pv", "scale": k, "connection": where})
    for old_arr, new_arr in zip(site.pv_arrays, new.pv_arrays, strict=True):
        hit = where is None or old_arr.connection == where
        assert new_arr.kwp == (old_arr.kwp * k if hit else old_arr.kwp)
        assert new_arr.model_dump(exclude={"kwp"}) == old_arr.model_dump(exclude={"kwp"})
    assert dump(new, "pv_arrays") == dump(site, "pv_arrays")
    same_inputs(new_inputs, inputs)


@SETTINGS
@given(kva=st.floats(10.0, 2000.0), cid=st.sampled_from(["T1", "T2"]))
def test_set_transformer_changes_only_that_connection(small: tuple[Site, SiteInputs], kva: float, cid: str) -> None:
    site, inputs = small
    new, new_inputs = edit(small, {"kind": "set_transformer", "connection": cid, "rated_kva": kva})
    for old_c, new_c in zip(site.connections, new.connections, strict=True):
        if old_c.id == cid:
            assert new_c.rated_kva == kva
            assert new_c.limit_import_kw == kva * old_c.power_factor
            assert new_c.model_dump(exclude={"rated_kva"}) == old_c.model_dump(exclude={"rated_kva"})
        else:
            assert new_c == old_c
    assert dump(new, "connections") == dump(site, "connections")
    same_inputs(new_inputs, inputs)


@SETTINGS
@given(kwh=st.floats(1.0, 5000.0), kw=st.none() | st.floats(1.0, 2000.0), cid=st.sampled_from(["T1", "T2"]))
def test_add_battery_appends_one(small: tuple[Site, SiteInputs], kwh: float, kw: float | None, cid: str) -> None:
    site, inputs = small
    new, new_inputs = edit(small, {"kind": "add_battery", "connection": cid, "capacity_kwh": kwh, "charge_kw": kw})
    assert new.batteries[:-1] == site.batteries
    added = new.batteries[-1]
    assert (added.id, added.connection, added.capacity_kwh) == ("e0-BAT", cid, kwh)
    assert added.charge_kw == added.discharge_kw == (kw if kw is not None else kwh / 2)
    assert dump(new, "batteries") == dump(site, "batteries")
    same_inputs(new_inputs, inputs)


@SETTINGS
@given(k=st.floats(0.1, 10.0), pick=st.integers(0, 1000))
def test_resize_battery_scales_one(small: tuple[Site, SiteInputs], k: float, pick: int) -> None:
    site, _ = small
    target = site.batteries[pick % len(site.batteries)]
    new, _ = edit(small, {"kind": "resize_battery", "id": target.id, "scale": k})
    for old_b, new_b in zip(site.batteries, new.batteries, strict=True):
        if old_b.id != target.id:
            assert new_b == old_b
            continue
        for name in ("capacity_kwh", "charge_kw", "discharge_kw"):
            assert getattr(new_b, name) == getattr(old_b, name) * k
    assert dump(new, "batteries") == dump(site, "batteries")


@SETTINGS
@given(count=st.integers(0, 12), seed=st.integers(0, 2**16), where=CONNECTIONS)
def test_add_evs_adds_wallboxes_and_their_sessions(
    small: tuple[Site, SiteInputs], count: int, seed: int, where: str | None
) -> None:
    site, inputs = small
    spec = {"kind": "add_evs", "count": count, "seed": seed, "connection": where}
    new, new_inputs = edit(small, spec)
    assert new.ev_chargers[: len(site.ev_chargers)] == site.ev_chargers
    added = new.ev_chargers[len(site.ev_chargers) :]
    assert len(added) == count
    owners = [c.household for c in added]
    assert len(set(owners)) == count
    homes = {h.id: h for h in site.households}
    existing = {c.id.removeprefix("EV-").split("-")[0] for c in site.ev_chargers}
    for charger in added:
        home = homes[charger.household]  # type: ignore[index]
        assert charger.household not in existing and home.profile != "G25"
        assert (charger.connection, charger.feeder) == (home.connection, home.feeder)
        assert where is None or charger.connection == where
    assert new.ev_sessions[: len(site.ev_sessions)] == site.ev_sessions
    begin, end = inputs.index[0], inputs.index[-1] + pd.Timedelta(minutes=15)
    new_ids = {c.id for c in added}
    for ses in new.ev_sessions[len(site.ev_sessions) :]:
        assert ses.charger in new_ids
        assert begin <= pd.Timestamp(ses.arrival) < pd.Timestamp(ses.departure) <= end
        hours = (pd.Timestamp(ses.departure) - pd.Timestamp(ses.arrival)) / pd.Timedelta(hours=1)
        assert 0 < ses.energy_needed_kwh <= min(35.0, 0.8 * 11.0 * hours) + 0.05
    untouched = ("ev_chargers", "ev_sessions")
    assert {k: v for k, v in new.model_dump().items() if k not in untouched} == {
        k: v for k, v in site.model_dump().items() if k not in untouched
    }
    same_inputs(new_inputs, inputs)
    again, _ = edit(small, spec)
    assert again == new  # deterministic for a seed


@SETTINGS
@given(share=st.floats(0.01, 1.0), seed=st.integers(0, 2**16), where=CONNECTIONS)
def test_heat_pump_rollout_adds_pumps_with_demand(
    small: tuple[Site, SiteInputs], share: float, seed: int, where: str | None
) -> None:
    site, inputs = small
    new, new_inputs = edit(small, {"kind": "heat_pump_rollout", "share": share, "seed": seed, "connection": where})
    with_hp = {h.household for h in site.heat_pumps}
    eligible = [
        h for h in site.households if h.profile != "G25" and h.id not in with_hp and where in (None, h.connection)
    ]
    added = new.heat_pumps[len(site.heat_pumps) :]
    assert new.heat_pumps[: len(site.heat_pumps)] == site.heat_pumps
    assert len(added) == round(share * len(eligible))
    assert {h.household for h in added} <= {h.id for h in eligible}
    for hp in added:
        assert 3.0 <= hp.electric_kw <= 9.0
        demand = new_inputs.heat_demand_kw[hp.id]
        assert np.isfinite(demand).all() and (demand >= 0).all() and demand.sum() > 0
    assert list(new_inputs.heat_demand_kw.columns) == [h.id for h in new.heat_pumps]
    pd.testing.assert_frame_equal(new_inputs.heat_demand_kw[inputs.heat_demand_kw.columns], inputs.heat_demand_kw)
    assert dump(new, "heat_pumps") == dump(site, "heat_pumps")


@SETTINGS
@given(
    value=st.booleans(),
    kinds=st.lists(st.sampled_from(["battery", "ev_charger", "heat_pump"]), min_size=1, unique=True),
    where=CONNECTIONS,
)
def test_set_flex_contract_sets_the_flag_of_the_chosen(
    small: tuple[Site, SiteInputs], value: bool, kinds: list[str], where: str | None
) -> None:
    site, _ = small
    new, _ = edit(small, {"kind": "set_flex_contract", "value": value, "devices": kinds, "connection": where})
    for kind, attr in (("battery", "batteries"), ("ev_charger", "ev_chargers"), ("heat_pump", "heat_pumps")):
        for old_d, new_d in zip(getattr(site, attr), getattr(new, attr), strict=True):
            hit = kind in kinds and where in (None, old_d.connection)
            assert new_d.flex_contract == (value if hit else old_d.flex_contract)
            assert new_d.model_dump(exclude={"flex_contract"}) == old_d.model_dump(exclude={"flex_contract"})


def test_tariff_par14a_and_prices(small: tuple[Site, SiteInputs]) -> None:
    site, inputs = small
    new, new_inputs = edit(
        small,
        {"kind": "set_tariff", "peak_charge_eur_per_kw": 2.0, "grid_fee_windows": []},
        {"kind": "set_par14a", "min_kw": 5.0},
    )
    assert new.tariff.peak_charge_eur_per_kw == 2.0 and new.tariff.grid_fee_windows == []
    assert new.tariff.model_dump(exclude={"peak_charge_eur_per_kw", "grid_fee_windows"}) == site.tariff.model_dump(
        exclude={"peak_charge_eur_per_kw", "grid_fee_windows"}
    )
    assert new.par14a.min_kw == 5.0 and new.par14a.gzf == site.par14a.gzf
    same_inputs(new_inputs, inputs)
    fixed, fixed_inputs = edit(small, {"kind": "set_tariff", "import_price_eur_per_kwh": 0.33})
    assert fixed_inputs.price_eur_per_kwh is None and fixed.tariff.import_price_eur_per_kwh == 0.33
    flat, flat_inputs = edit(small, {"kind": "set_prices", "constant_eur_per_kwh": 0.35})
    assert flat_inputs.price_eur_per_kwh is None and flat.tariff.import_price_eur_per_kwh == 0.35
    _, spread = edit(small, {"kind": "set_prices", "scale": 2.0, "offset_eur_per_kwh": -0.1})
    assert inputs.price_eur_per_kwh is not None and spread.price_eur_per_kwh is not None
    np.testing.assert_allclose(spread.price_eur_per_kwh, inputs.price_eur_per_kwh * 2.0 - 0.1)


def test_add_pv_copies_a_profile_or_uses_clear_sky(small: tuple[Site, SiteInputs]) -> None:
    site, inputs = small
    ref = site.pv_arrays[0]
    new, new_inputs = edit(small, {"kind": "add_pv", "connection": "T2", "kwp": 99, "profile_from": ref.id})
    assert new.pv_arrays[-1].kwp == 99 and new.pv_arrays[:-1] == site.pv_arrays
    np.testing.assert_array_equal(new_inputs.pv_kw_per_kwp["e0-PV"], inputs.pv_kw_per_kwp[ref.id])
    # without any PV: clear sky, zero at night, positive at noon (13:00 local = 12:00 UTC, in the inputs)
    bare = site_from_dict({**site.model_dump(), "pv_arrays": []})
    no_pv = copy.copy(inputs)
    no_pv.pv_kw_per_kwp = inputs.pv_kw_per_kwp[[]]
    _, clear = apply_edits(bare, no_pv, parse({"kind": "add_pv", "connection": "T1", "kwp": 10}))
    profile = clear.pv_kw_per_kwp["e0-PV"]
    assert profile.loc["2026-01-14T13:00:00+00:00"] > 0.2
    assert profile.loc["2026-01-14T22:00:00+00:00"] == 0.0


EDITS = st.sampled_from(
    [
        {"kind": "scale_pv", "scale": 2.0},
        {"kind": "add_battery", "connection": "T2", "capacity_kwh": 200},
        {"kind": "resize_battery", "id": "CB-T2", "scale": 0.5},
        {"kind": "add_evs", "count": 5, "seed": 3},
        {"kind": "heat_pump_rollout", "share": 0.4, "seed": 2},
        {"kind": "set_transformer", "connection": "T2", "rated_kva": 50},
        {"kind": "set_flex_contract", "value": False},
        {"kind": "set_prices", "constant_eur_per_kwh": 0.3},
        {"kind": "add_pv", "connection": "T1", "kwp": 30},
        {"kind": "set_par14a", "min_kw": 3.7},
    ]
)


@SETTINGS
@given(edits=st.lists(EDITS, max_size=5))
def test_the_baseline_is_never_mutated(small: tuple[Site, SiteInputs], edits: list[dict[str, Any]]) -> None:
    site, inputs = small
    before_site = site.model_dump()
    before_inputs = copy.deepcopy(inputs)
    # the same edit twice would add the same ids twice: number them apart where that matters
    numbered = [{**e, "id": f"x{i}"} if e["kind"] in ("add_battery", "add_pv") else e for i, e in enumerate(edits)]
    with contextlib.suppress(ValueError):  # e.g. the same EVs twice on too few homes: refusing is fine
        apply_edits(site, inputs, parse(*numbered))
    assert site.model_dump() == before_site
    same_inputs(inputs, before_inputs)


def test_ev_sessions_do_not_depend_on_the_inputs_span(small: tuple[Site, SiteInputs]) -> None:
    site, inputs = small
    later = inputs.window(inputs.index[8:])  # the same data from two hours later
    spec = parse({"kind": "add_evs", "count": 8, "seed": 11, "plug_in_share": 1.0})
    full, _ = apply_edits(site, inputs, spec)
    cut, _ = apply_edits(site, later, spec)
    n = len(site.ev_sessions)
    start = later.index[0]
    assert [s for s in full.ev_sessions[n:] if pd.Timestamp(s.arrival) >= start] == cut.ev_sessions[n:]
    assert len(cut.ev_sessions) > n
