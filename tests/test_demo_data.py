"""The shipped demo quarter (data/demo) and its generator, grid.demo.

The congestion check recomputes the *uncontrolled* load of each transformer from the inputs in the
simplest way (documented in :func:`_uncontrolled_by_connection`) and compares it with the limits:
the demo is designed so that T2 (400 kVA -> 380 kW) is overloaded on both evenings and T1 is not.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from grid import demo
from grid.domain import Site, load_site, site_from_dict
from grid.series import SiteInputs, load_inputs

DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"
FILES = ("site.yaml", *demo.INPUT_FILES.values())
BERLIN = ZoneInfo("Europe/Berlin")
EVENING = (dt.time(16, 0), dt.time(22, 0))  # local time
MIN_CONGESTED_INTERVALS = 4  # at least 1 h above the limit on each evening


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(DEMO_DIR / "site.yaml")


@pytest.fixture(scope="module")
def inputs(site: Site) -> SiteInputs:
    return load_inputs(site)


def test_demo_loads_on_48_hours_of_quarter_hours(site: Site, inputs: SiteInputs) -> None:
    assert site.id == "demo"
    assert site.site.timezone == "Europe/Berlin"
    assert site.site.resolution_min == 15
    assert (site.site.latitude, site.site.longitude) == (49.87, 8.65)
    assert inputs.index[0] == pd.Timestamp("2026-01-14T00:00:00+01:00")
    assert len(inputs.index) == 192
    assert inputs.price_eur_per_kwh is not None and inputs.co2_g_per_kwh is not None


def test_csv_files_are_utc_iso_with_four_decimals() -> None:
    for name in demo.INPUT_FILES.values():
        lines = (DEMO_DIR / name).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("timestamp,")
        assert len(lines) == 1 + 192
        assert lines[1].split(",")[0] == "2026-01-13T23:00:00+00:00"
        decimals = [len(v.partition(".")[2]) for line in lines[1:] for v in line.split(",")[1:]]
        assert max(decimals) <= 4, name


def test_network(site: Site) -> None:
    assert [(c.id, c.rated_kva) for c in site.connections] == [("T1", 630.0), ("T2", 400.0)]
    assert site.connection("T2").limit_import_kw == pytest.approx(380.0)
    for conn in site.connections:
        assert len(conn.feeders) == 2
        assert all(f.import_limit_kw > 0 and f.export_limit_kw > 0 for f in conn.feeders)
    community = [b for b in site.batteries if b.household is None]
    assert [(b.connection, b.capacity_kwh, b.charge_kw) for b in community] == [("T2", 500.0, 250.0)]


def test_households_and_profiles(site: Site) -> None:
    homes = site.households
    assert len(homes) == 300
    annual = np.array([h.annual_kwh for h in homes])
    assert annual.min() >= 1500 and annual.max() <= 6000
    assert 3200 <= annual.mean() <= 3800
    profiles = Counter(h.profile for h in homes)
    assert profiles["H25"] > len(homes) / 2
    assert 1 <= profiles["G25"] <= 12
    with_pv = {p.household for p in site.pv_arrays}
    with_battery = {b.household for b in site.batteries if b.household}
    assert with_battery <= with_pv
    for home in homes:
        if home.id in with_battery:
            assert home.profile == "S25", home.id
        elif home.id in with_pv:
            assert home.profile == "P25", home.id
        else:
            assert home.profile in ("H25", "G25"), home.id


def test_pv_and_batteries(site: Site) -> None:
    n = len(site.households)
    assert 0.35 * n <= len(site.pv_arrays) <= 0.45 * n
    assert all(5 <= p.kwp <= 15 for p in site.pv_arrays)
    assert len({(p.tilt_deg, p.azimuth_deg) for p in site.pv_arrays}) > 10
    assert sum(p.curtailable for p in site.pv_arrays) > 0.7 * len(site.pv_arrays)
    homes = [b for b in site.batteries if b.household]
    assert 0.12 * n <= len(homes) <= 0.18 * n
    for bat in homes:
        assert 5 <= bat.capacity_kwh <= 15 and 3 <= bat.charge_kw <= 5
        assert bat.charge_efficiency == bat.discharge_efficiency == 0.95


def test_ev_chargers_and_sessions(site: Site, inputs: SiteInputs) -> None:
    chargers = site.ev_chargers
    assert 40 <= len(chargers) <= 50
    power = Counter(c.max_kw for c in chargers)
    assert set(power) == {11.0, 22.0} and 1 <= power[22.0] <= 5
    assert 2 <= sum(c.v2g for c in chargers) <= 6
    assert 0.3 <= np.mean([c.flex_contract for c in chargers]) <= 0.7
    assert 50 <= len(site.ev_sessions) <= 70
    begin, end = inputs.index[0], inputs.index[-1] + pd.Timedelta(minutes=15)
    v2g = {c.id for c in chargers if c.v2g}
    for ses in site.ev_sessions:
        assert begin <= ses.arrival < ses.departure <= end, ses.id
        assert (ses.capacity_kwh is not None) == (ses.charger in v2g), ses.id
    evening = [s for s in site.ev_sessions if s.arrival.astimezone(BERLIN).hour >= 16]
    assert len(evening) > len(site.ev_sessions) / 2


def test_heat_pumps(site: Site) -> None:
    pumps = site.heat_pumps
    assert 70 <= len(pumps) <= 95
    large = [p for p in pumps if p.electric_kw > 11]
    assert 1 <= len(large) <= 2
    assert all(3 <= p.electric_kw <= 9 for p in pumps if p not in large)
    assert all(10 <= p.store_kwh <= 30 for p in pumps)
    assert all(p.annual_heat_kwh is not None and 8000 <= p.annual_heat_kwh <= 20000 for p in pumps)
    assert 0.3 <= np.mean([p.flex_contract for p in pumps]) <= 0.7


def test_ems_groups_share_a_household_and_a_contract(site: Site) -> None:
    groups: dict[str, list] = {}
    for device in [*site.ev_chargers, *site.heat_pumps, *site.batteries]:
        if device.ems:
            groups.setdefault(device.ems, []).append(device)
    assert 2 <= len(groups) <= 12
    for name, devices in groups.items():
        assert len(devices) >= 2, name
        assert len({d.flex_contract for d in devices}) == 1, name
        assert len({(d.connection, d.feeder) for d in devices}) == 1, name
    kinds = [tuple(sorted(type(d).__name__ for d in devs)) for devs in groups.values()]
    assert any(k.count("EVCharger") == 2 for k in kinds)
    assert any("HeatPump" in k and "EVCharger" in k for k in kinds)


def test_tariff(site: Site) -> None:
    tariff = site.tariff
    assert tariff.import_price_eur_per_kwh is None
    assert tariff.feed_in_price_eur_per_kwh == 0.082
    assert tariff.grid_fee_eur_per_kwh == 0.09
    windows = {(w.start, w.end): w.fee_eur_per_kwh for w in tariff.grid_fee_windows}
    assert windows == {(dt.time(17), dt.time(20)): 0.14, (dt.time(0), dt.time(6)): 0.03}
    assert tariff.peak_charge_eur_per_kw > 0 and tariff.co2_price_eur_per_t == 80


def test_pv_is_zero_at_night_and_at_most_1_1(inputs: SiteInputs) -> None:
    pv = inputs.pv_kw_per_kwp
    hour = pd.DatetimeIndex(pv.index).tz_convert(BERLIN).hour
    # January in Darmstadt: sunrise ~08:20, sunset ~16:50 local
    assert (pv[(hour < 7) | (hour >= 18)] == 0).all().all()
    assert pv.to_numpy().min() >= 0 and pv.to_numpy().max() <= 1.1
    assert pv[(hour >= 11) & (hour < 14)].to_numpy().mean() > 0.02


def test_series_are_plausible(inputs: SiteInputs) -> None:
    assert (inputs.base_load_kw.to_numpy() >= 0).all()
    assert (inputs.heat_demand_kw.to_numpy() >= 0).all()
    assert inputs.temp_degc.min() >= -8 and inputs.temp_degc.max() <= 10
    assert inputs.price_eur_per_kwh is not None and inputs.co2_g_per_kwh is not None
    price = inputs.price_eur_per_kwh
    assert price.min() >= 0.20 and price.max() <= 0.36
    co2 = inputs.co2_g_per_kwh
    assert co2.min() >= 200 and co2.max() <= 500
    assert np.corrcoef(price, co2)[0, 1] > 0.5
    # households differ: no two base-load columns are equal
    assert inputs.base_load_kw.T.duplicated().sum() == 0


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = demo.generate_demo(tmp_path / "a", n_households=50)
    second = demo.generate_demo(tmp_path / "b", n_households=50)
    for name in FILES:
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes(), name
    other = demo.generate_demo(tmp_path / "c", seed=1, n_households=50)
    assert (other.parent / "base_load.csv").read_bytes() != (first.parent / "base_load.csv").read_bytes()
    small = load_site(first)
    assert len(small.households) == 50
    assert len(load_inputs(small).index) == 192


def test_shipped_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    fresh = demo.generate_demo(tmp_path).parent
    for name in FILES:
        assert (fresh / name).read_bytes() == (DEMO_DIR / name).read_bytes(), (
            f"data/demo/{name} is stale: run `python -m grid.demo data/demo`"
        )


def test_uncontrolled_ev_charges_at_full_power_until_done() -> None:
    # 20 kWh at 11 kW in 15-min steps: 7 x 2.75 kWh = 19.25 kWh, then 0.75 kWh = 3 kW, then 0.
    site = site_from_dict(
        {
            "site": {"id": "t"},
            "connections": [{"id": "T1", "rated_kva": 100}],
            "ev_chargers": [{"id": "EV1", "connection": "T1", "max_kw": 11}],
            "ev_sessions": [
                {
                    "id": "S1",
                    "charger": "EV1",
                    "energy_needed_kwh": 20,
                    "arrival": "2026-01-14T17:00:00+00:00",
                    "departure": "2026-01-14T20:00:00+00:00",
                }
            ],
        }
    )
    index = pd.date_range("2026-01-14T16:30:00+00:00", periods=16, freq="15min", tz="UTC")
    kw = demo.uncontrolled_ev_kw(site, index)["EV1"].to_numpy()
    assert kw.tolist() == pytest.approx([0, 0] + [11] * 7 + [3] + [0] * 6)


def _uncontrolled_by_connection(site: Site, inputs: SiteInputs) -> pd.DataFrame:
    """kW per connection if nothing is controlled: household base load + each heat pump's heat
    demand / COP(outdoor temperature), at most its rating + every car charging at full power from
    arrival until its energy is in. PV (zero on January evenings) and batteries are left out."""
    temp = inputs.temp_degc.to_numpy()
    ev = demo.uncontrolled_ev_kw(site, inputs.index)
    out = {}
    for conn in site.connections:
        homes = [h.id for h in site.households if h.connection == conn.id]
        total = inputs.base_load_kw[homes].sum(axis=1)
        for hp in (p for p in site.heat_pumps if p.connection == conn.id):
            cop = np.clip(hp.cop.intercept + hp.cop.slope_per_degc * temp, hp.cop.min_cop, hp.cop.max_cop)
            total += np.minimum(inputs.heat_demand_kw[hp.id] / cop, hp.electric_kw)
        total += ev[[c.id for c in site.ev_chargers if c.connection == conn.id]].sum(axis=1)
        out[conn.id] = total
    return pd.DataFrame(out)


def test_t2_is_congested_on_both_evenings_and_t1_is_not(site: Site, inputs: SiteInputs) -> None:
    load = _uncontrolled_by_connection(site, inputs)
    pd.testing.assert_frame_equal(load, demo.uncontrolled_load_kw(site, inputs)[load.columns], check_freq=False)
    local = load.tz_convert("Europe/Berlin")
    evenings = local.between_time(*EVENING)
    t1, t2 = site.connection("T1"), site.connection("T2")
    assert local["T1"].max() < 0.5 * t1.limit_import_kw
    days = pd.DatetimeIndex(evenings.index).date
    over = (evenings["T2"] > t2.limit_import_kw).groupby(days).sum()
    assert len(over) == 2
    assert (over >= MIN_CONGESTED_INTERVALS).all(), over.to_dict()
    assert (local["T2"].between_time(dt.time(0), dt.time(15)) < t2.limit_import_kw).all()


@pytest.mark.slow
def test_large_sites_keep_the_design(tmp_path: Path) -> None:
    big = load_site(demo.generate_demo(tmp_path, n_households=1000))
    load = _uncontrolled_by_connection(big, load_inputs(big))
    assert len(big.connections) == 6
    for k, conn in enumerate(big.connections):
        congested = (load[conn.id] > conn.limit_import_kw).sum() >= 2 * MIN_CONGESTED_INTERVALS
        assert congested == (k % 2 == 1), conn.id


def test_weather_has_a_level_per_day_whatever_the_index_unit() -> None:
    """The cloud level and the mean temperature are drawn per local day and interpolated between
    noons: the same weather from an index in s, us (what pandas 3 parses strings to) or ns, and
    14 days of it do not share one level (they did with us: the seconds came out 1000x too small,
    before the first noon, and every day got the first day's level)."""
    start = pd.Timestamp("2026-01-14T00:00:00+01:00").tz_convert("UTC")
    index = pd.date_range(start, periods=14 * 96, freq="15min")
    weather = {unit: demo.make_weather(index.as_unit(unit), 7) for unit in ("s", "us", "ns")}
    for unit in ("s", "us"):
        np.testing.assert_allclose(weather[unit].to_numpy(), weather["ns"].to_numpy())
    daily_temp = weather["us"]["temp_degc"].resample("1D").mean()
    # daily means drawn in -0.5..2 degC: 14 draws spread by more than the smooth 0.3 degC noise
    assert daily_temp.max() - daily_temp.min() > 1.0
