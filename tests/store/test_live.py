"""Live data in the store (SQLite and PostgreSQL): EV sessions as events, prices and weather as
publications read "as of", limit orders; bad input refused with the field named; the readers the
planner calls (sessions_in, prices_as_of, active_orders, device_power)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.errors import InputError, InputErrors
from grid.ingest.report import Source
from grid.ingest.sessions import (
    SessionConflictError,
    UnknownSessionError,
    change_session,
    create_session,
    plug_out,
    session_message,
)
from grid.ingest.signals import Point, import_prices, import_weather, place_order
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.store.live import (
    active_orders,
    cancel_order,
    device_power,
    get_session,
    prices_as_of,
    session_events,
    sessions_in,
    weather_as_of,
)
from grid.store.testing import demo_assets, demo_sensors

NOW = pd.Timestamp("2026-01-15T12:00:00Z")
DAY = pd.Timestamp("2026-01-16T00:00:00Z")


@pytest.fixture
def live(store: Engine) -> Engine:
    demo_sensors(store)
    demo_assets(store)
    return store


def _session(**over: Any) -> dict[str, Any]:
    body = {
        "session_id": "car1",
        "charger": "ev1",
        "arrival": "2026-01-15T17:00:00+01:00",
        "departure": "2026-01-16T07:00:00+01:00",
        "energy_needed_kwh": 20.0,
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


# --- EV sessions ----------------------------------------------------------------------------------

SESSION_BAD: list[tuple[dict[str, Any], str]] = [
    (_session(charger="bat1"), "charger"),
    (_session(charger="nope"), "charger"),
    (_session(arrival="2026-01-15T17:00:00"), "arrival"),
    (_session(departure="2026-01-15T15:00:00+01:00"), "departure"),  # before arrival
    (_session(arrival="2026-01-15T08:00:00Z", departure="2026-01-15T11:00:00Z"), "departure"),  # past
    (_session(energy_needed_kwh=-1), "energy_needed_kwh"),
    (_session(energy_needed_kwh=None), "energy_needed_kwh"),
    (_session(energy_needed_kwh=None, target_soc=0.8), "capacity_kwh"),
    (_session(energy_needed_kwh=None, target_soc=1.2, capacity_kwh=60), "target_soc"),
    (_session(target_soc=0.8, capacity_kwh=60), "target_soc"),  # both ways of saying the need
    (_session(capacity_kwh=10), "energy_needed_kwh"),  # needs more than the car holds
    (_session(v2g_consent="yes"), "v2g_consent"),
    (_session(session_id="a/b"), "session_id"),
    (_session(colour="red"), "colour"),
]


@pytest.mark.parametrize(("body", "field"), SESSION_BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(SESSION_BAD)])
def test_bad_sessions_are_refused_naming_the_field(live: Engine, body: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        create_session(live, "s1", body, "api", NOW)
    assert info.value.where == field
    assert sessions_in(live, "s1", NOW, DAY + pd.Timedelta(days=1)) == []


def test_session_lifecycle_as_events(live: Engine) -> None:
    session, created = create_session(
        live, "s1", _session(energy_needed_kwh=None, target_soc=0.8, capacity_kwh=60, initial_soc=0.3), "api", NOW
    )
    assert created and session.energy_needed_kwh == pytest.approx(30.0)
    assert (
        create_session(
            live, "s1", _session(energy_needed_kwh=None, target_soc=0.8, capacity_kwh=60, initial_soc=0.3), "api", NOW
        )[1]
        is False
    )
    with pytest.raises(SessionConflictError):  # same id, other fields
        create_session(live, "s1", _session(energy_needed_kwh=5), "api", NOW)
    with pytest.raises(SessionConflictError):  # another car on the same charger at the same time
        create_session(live, "s1", _session(session_id="car2"), "api", NOW)
    changed, did = change_session(live, "s1", "car1", {"departure": "2026-01-16T09:00:00+01:00"}, "api", NOW)
    assert did and changed.departure == pd.Timestamp("2026-01-16T08:00:00Z")
    assert changed.energy_needed_kwh == pytest.approx(30.0)
    changed, _ = change_session(live, "s1", "car1", {"initial_soc": 0.5}, "api", NOW)
    assert changed.energy_needed_kwh == pytest.approx(18.0)  # (0.8 - 0.5) x 60
    assert change_session(live, "s1", "car1", {"initial_soc": 0.5}, "api", NOW)[1] is False
    with pytest.raises(UnknownSessionError):
        change_session(live, "s1", "nope", {"energy_needed_kwh": 1}, "api", NOW)
    active = sessions_in(live, "s1", "2026-01-15T18:00:00Z", "2026-01-15T19:00:00Z")
    assert [s.session_id for s in active] == ["car1"]
    assert active[0].to_domain().energy_needed_kwh == pytest.approx(18.0)
    later = NOW + pd.Timedelta(hours=8)
    with pytest.raises(InputError) as info:
        plug_out(live, "s1", "car1", {"at": "2026-01-15T15:00:00Z"}, "api", later)
    assert info.value.where == "at"  # before the arrival
    out, did = plug_out(live, "s1", "car1", {"at": "2026-01-15T19:30:00Z"}, "api", later)
    assert did and out.plugged_out_at == pd.Timestamp("2026-01-15T19:30:00Z")
    assert out.to_domain().departure == pd.Timestamp("2026-01-15T19:30:00Z")
    assert plug_out(live, "s1", "car1", {}, "api", later)[1] is False
    assert sessions_in(live, "s1", "2026-01-15T20:00:00Z", DAY) == []  # plugged out: no longer active
    assert [s.session_id for s in sessions_in(live, "s1", "2026-01-15T19:00:00Z", DAY)] == ["car1"]
    with pytest.raises(SessionConflictError):
        change_session(live, "s1", "car1", {"energy_needed_kwh": 1}, "api", later)
    kinds = [e["kind"] for e in session_events(live, "s1", "car1")]
    assert kinds == ["created", "changed", "changed", "plugged_out"]


def test_session_messages_reject_and_keep_poison(live: Engine) -> None:
    topic = "quartier/s1/chargers/ev1/session"
    arrive = (
        b'{"event": "arrival", "session_id": "m1", "arrival": "2026-01-15T12:00:00Z", '
        b'"departure": "2026-01-15T20:00:00Z", "energy_needed_kwh": 10}'
    )
    assert session_message(live, "s1", topic, "ev1", arrive, NOW).accepted == 1
    assert session_message(live, "s1", topic, "ev1", arrive, NOW).duplicates == 1  # redelivered
    for payload, field in [
        (b"{oops", "payload"),
        (b'{"event": "wave"}', "event"),
        (b'{"event": "change", "session_id": "m1", "departure": "soon"}', "departure"),
        (b'{"event": "plug_out", "session_id": "zz"}', "session_id"),
    ]:
        report = session_message(live, "s1", topic, "ev1", payload, NOW)
        assert [r.field for r in report.rejected] == [field], payload
        assert report.balanced
    done = session_message(live, "s1", topic, "ev1", b'{"event": "plug_out", "session_id": "m1"}', NOW)
    assert done.accepted == 1 and get_session(live, "s1", "m1").plugged_out_at == NOW  # type: ignore[union-attr]


# --- prices and weather ---------------------------------------------------------------------------


def _points(values: list[float], start: pd.Timestamp = DAY, minutes: int = 60, key: str = "price") -> list[Point]:
    return [
        Point(f"prices[{i}]", {"start": (start + pd.Timedelta(minutes=minutes * i)).isoformat(), key: v})
        for i, v in enumerate(values)
    ]


def test_prices_published_then_forecast(live: Engine) -> None:
    published = "2026-01-15T12:45:00+01:00"
    hourly = [80.0 + h for h in range(24)]
    frame = import_prices(live, "s1", _points(hourly), "EUR/MWh", published, "epex", NOW)
    assert len(frame) == 24 and frame["value"].iloc[0] == pytest.approx(0.08)
    index = pd.date_range(DAY, periods=2 * 96, freq="15min", tz="UTC")
    before = prices_as_of(live, "s1", "2026-01-15T11:00:00Z", index)
    assert (before["source"] == "missing").all()
    series = prices_as_of(live, "s1", NOW, index)
    assert (series["source"].iloc[:96] == "published").all()
    assert series["price_eur_per_kwh"].iloc[4] == pytest.approx(0.081)  # 01:00-02:00 at 81 EUR/MWh
    assert (series["source"].iloc[96:] == "same_hour_last_day").all()
    assert series["price_eur_per_kwh"].iloc[96 + 5] == pytest.approx(0.081)  # same hour, next day
    held = prices_as_of(live, "s1", NOW, index, forecast="last_price")
    assert held["price_eur_per_kwh"].iloc[-1] == pytest.approx(0.103)
    # a later publication (15-min, ct/kWh) wins where it covers, as of its time only
    quarter = _points([5.0, 6.0], DAY, 15)
    import_prices(live, "s1", quarter, "ct/kWh", "2026-01-15T12:00:00Z", "update", NOW)
    newer = prices_as_of(live, "s1", NOW, index)
    assert list(newer["price_eur_per_kwh"].iloc[:3].round(4)) == [0.05, 0.06, 0.08]
    assert prices_as_of(live, "s1", "2026-01-15T11:50:00Z", index)["price_eur_per_kwh"].iloc[0] == pytest.approx(0.08)


PRICE_BAD: list[tuple[list[Point], str]] = [
    ([Point("prices[0]", {"start": "2026-01-16T00:00:00", "price": 50})], "prices[0].start"),
    ([Point("prices[0]", {"start": "2026-01-16T00:00:00Z", "price": 5000})], "prices[0].price"),
    ([Point("prices[0]", {"start": "2026-01-16T00:00:00Z", "price": "cheap"})], "prices[0].price"),
    (
        [Point("prices[0]", {"start": "2026-01-16T00:07:00Z", "end": "2026-01-16T00:22:00Z", "price": 1})],
        "prices[0].start",
    ),
    (
        [Point("prices[0]", {"start": "2026-01-16T00:00:00Z", "end": "2026-01-16T00:30:00Z", "price": 1})],
        "prices[0].end",
    ),
    ([Point("prices[0]", {"start": "2026-01-16T00:00:00Z", "cost": 1})], "prices[0].cost"),
    (
        [
            Point("prices[0]", {"start": "2026-01-16T00:00:00Z", "end": "2026-01-16T01:00:00Z", "price": 1}),
            Point("prices[1]", {"start": "2026-01-16T00:30:00Z", "end": "2026-01-16T00:45:00Z", "price": 1}),
        ],
        "prices[1].start",
    ),
]


@pytest.mark.parametrize(("points", "where"), PRICE_BAD, ids=[b[1] + str(i) for i, b in enumerate(PRICE_BAD)])
def test_bad_prices_are_refused_naming_the_point_and_field(live: Engine, points: list[Point], where: str) -> None:
    with pytest.raises(InputErrors) as info:
        import_prices(live, "s1", points, "EUR/MWh", "2026-01-15T12:00:00Z", "epex", NOW)
    assert where in [e.where for e in info.value.errors]
    index = pd.date_range(DAY, periods=4, freq="15min", tz="UTC")
    assert (prices_as_of(live, "s1", NOW, index)["source"] == "missing").all()  # nothing stored


def test_price_document_fields(live: Engine) -> None:
    with pytest.raises(InputError) as info:
        import_prices(live, "s1", _points([1.0]), "USD/MWh", "2026-01-15T12:00:00Z", "x", NOW)
    assert info.value.where == "unit"
    with pytest.raises(InputError) as info:
        import_prices(live, "s1", _points([1.0]), "EUR/MWh", "2026-01-15T14:00:00Z", "x", NOW)
    assert info.value.where == "published_at"


def test_weather_as_of(live: Engine) -> None:
    import_weather(live, "s1", "temp_degc", _points([1.0, 2.0], key="value"), "2026-01-15T06:00:00Z", "dwd", NOW)
    import_weather(live, "s1", "temp_degc", _points([3.0], key="value"), "2026-01-15T09:00:00Z", "dwd", NOW)
    index = pd.date_range(DAY, periods=8, freq="15min", tz="UTC")
    now = weather_as_of(live, "s1", NOW, index)
    assert list(now["value"]) == [3.0] * 4 + [2.0] * 4
    assert list(weather_as_of(live, "s1", "2026-01-15T07:00:00Z", index)["value"]) == [1.0] * 4 + [2.0] * 4
    with pytest.raises(InputErrors):
        import_weather(live, "s1", "temp_degc", _points([99.0], key="value"), "2026-01-15T06:00:00Z", "dwd", NOW)
    with pytest.raises(InputError):
        import_weather(live, "s1", "rain", _points([1.0], key="value"), "2026-01-15T06:00:00Z", "dwd", NOW)


# --- limit orders ---------------------------------------------------------------------------------


def _order(**over: Any) -> dict[str, Any]:
    body = {
        "connection": "T1",
        "start": "2026-01-15T17:00:00+01:00",
        "end": "2026-01-15T19:00:00+01:00",
        "import_kw": 150.0,
        "reason": "§14a",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


ORDER_BAD: list[tuple[dict[str, Any], str]] = [
    (_order(connection="bat1"), "connection"),
    (_order(start="2026-01-15T17:00:00"), "start"),
    (_order(end="2026-01-15T16:00:00+01:00"), "end"),
    (_order(start="2026-01-15T08:00:00Z", end="2026-01-15T09:00:00Z"), "end"),
    (_order(import_kw=-5), "import_kw"),
    (_order(import_kw=None), "import_kw"),
    (_order(export_kw="lots"), "export_kw"),
    (_order(reason=""), "reason"),
    (_order(reason=None), "reason"),
]


@pytest.mark.parametrize(("body", "field"), ORDER_BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(ORDER_BAD)])
def test_bad_orders_are_refused_naming_the_field(live: Engine, body: dict[str, Any], field: str) -> None:
    with pytest.raises((InputError, InputErrors)) as info:
        place_order(live, "s1", body, NOW)
    err = info.value
    wheres = [e.where for e in err.errors] if isinstance(err, InputErrors) else [err.where]
    assert field in wheres
    assert active_orders(live, "s1", NOW, DAY) == []


def test_orders_active_and_cancelled(live: Engine) -> None:
    a = place_order(live, "s1", _order(), NOW)
    b = place_order(
        live,
        "s1",
        _order(
            start="2026-01-15T20:00:00Z", end="2026-01-15T22:00:00Z", import_kw=None, export_kw=0, reason="congestion"
        ),
        NOW,
    )
    assert [o.id for o in active_orders(live, "s1", NOW, DAY)] == [a.id, b.id]
    assert [o.id for o in active_orders(live, "s1", "2026-01-15T18:00:00Z", "2026-01-15T19:00:00Z")] == []
    assert [o.id for o in active_orders(live, "s1", "2026-01-15T17:00:00Z", "2026-01-15T17:15:00Z")] == [a.id]
    assert b.export_kw == 0.0 and b.import_kw is None
    cancelled = cancel_order(live, "s1", a.id, NOW)
    assert cancelled is not None and cancelled.cancelled_at == NOW
    assert [o.id for o in active_orders(live, "s1", NOW, DAY)] == [b.id]
    assert cancel_order(live, "s1", "nope", NOW) is None


def test_device_power_per_interval(live: Engine) -> None:
    items = [
        {"asset_id": "ev1", "ts": "2026-01-15T10:01:00Z", "power_kw": 10.0},
        {"asset_id": "ev1", "ts": "2026-01-15T10:09:00Z", "power_kw": 8.0},
        {"asset_id": "bat1", "ts": "2026-01-15T10:20:00Z", "power_kw": -3.0},
    ]
    ingest_telemetry(live, "s1", payload_items({"telemetry": items}), Source("api", "t"), NOW)
    power = device_power(live, "s1", "2026-01-15T10:00:00Z", "2026-01-15T10:45:00Z")
    assert list(power.index) == list(pd.date_range("2026-01-15T10:00:00Z", periods=3, freq="15min"))
    assert power.loc["2026-01-15T10:00:00Z", "ev1"] == 9.0
    assert power.loc["2026-01-15T10:15:00Z", "bat1"] == -3.0
    assert pd.isna(power.loc["2026-01-15T10:30:00Z", "ev1"])


def test_same_hour_last_day_is_local_across_the_dst_change(live: Engine) -> None:
    """Prices for Saturday 2026-03-28 (local hour h costs h EUR/MWh); Sunday has 23 hours: its
    03:00 (01:00Z) takes Saturday's 03:00 (02:00Z), not the 02:00 a UTC day earlier."""
    saturday = pd.Timestamp("2026-03-28T00:00:00", tz="Europe/Berlin").tz_convert("UTC")
    points = [
        Point(f"prices[{h}]", {"start": (saturday + pd.Timedelta(hours=h)).isoformat(), "price": float(h)})
        for h in range(24)
    ]
    import_prices(live, "s1", points, "EUR/MWh", "2026-03-27T12:00:00Z", "epex", pd.Timestamp("2026-03-27T13:00Z"))
    sunday = pd.date_range("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", freq="1h", tz="UTC", inclusive="left")
    assert len(sunday) == 23
    got = prices_as_of(live, "s1", "2026-03-28T12:00:00Z", sunday)
    assert (got["source"] == "same_hour_last_day").all()
    local_hours = [t.tz_convert("Europe/Berlin").hour for t in sunday]
    assert list(got["price_eur_per_kwh"] * 1000) == pytest.approx([float(h) for h in local_hours])


def test_mqtt_arrival_needs_a_session_id(live: Engine) -> None:
    topic = "quartier/s1/chargers/ev1/session"
    body = (
        b'{"event": "arrival", "arrival": "2026-01-15T12:00:00Z", '
        b'"departure": "2026-01-15T20:00:00Z", "energy_needed_kwh": 1}'
    )
    report = session_message(live, "s1", topic, "ev1", body, NOW)
    assert [r.field for r in report.rejected] == ["session_id"]
    assert sessions_in(live, "s1", NOW, DAY) == []


def test_site_assets_are_the_registered_rows(store: Engine, sensors: dict[str, int]) -> None:
    from grid.store.live import Asset, site_assets
    from grid.store.schema import assets

    demo_assets(store)
    with store.begin() as conn:
        conn.execute(
            assets.insert(),
            [
                {
                    "site_id": "s1",
                    "asset_id": "hp2",
                    "kind": "heat_pump",
                    "connection": "T2",
                    "capacity_kwh": 12.0,
                    "max_power_kw": 4.0,
                    "temp_empty_degc": 30.0,
                    "temp_full_degc": 60.0,
                }
            ],
        )
    got = site_assets(store, "s1")
    assert got["hp2"] == Asset("hp2", "heat_pump", "T2", 12.0, 4.0, 30.0, 60.0)
    assert got["bat1"] == Asset("bat1", "battery", "T1", 10.0, 5.0, None, None)
    assert got["ev1"] == Asset("ev1", "ev_charger", "T1", None, 11.0)
    assert sorted(got) == ["T1", "bat1", "ev1", "hp1", "hp2", "pv1"]
    assert site_assets(store, "other") == {}
