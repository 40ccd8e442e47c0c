"""Properties (hypothesis), on SQLite and PostgreSQL: for any sequence of EV-session events, price
publications and limit orders, some of them bad, exactly the ones an independent model of the rules
accepts are accepted, and the stored state equals what the accepted ones say (nothing accepted is
lost, nothing refused is stored)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from grid.errors import InputError, InputErrors
from grid.ingest.sessions import SessionConflictError, UnknownSessionError, change_session, create_session, plug_out
from grid.ingest.signals import Point, import_prices, place_order
from grid.store.live import active_orders, cancel_order, list_sessions, prices_as_of
from grid.store.testing import demo_assets, demo_sensors, scratch_store

NOW = pd.Timestamp("2026-01-15T12:00:00Z")
H = pd.Timedelta(hours=1)
REFUSED = (InputError, InputErrors, SessionConflictError, UnknownSessionError)
_sites = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def prop_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_store(request.param, tmp_path_factory.mktemp("live")) as engine:
        yield engine


def _site(engine: Engine) -> str:
    site = f"p{next(_sites)}"
    demo_sensors(engine, site)
    demo_assets(engine, site)
    return site


# --- EV sessions ----------------------------------------------------------------------------------


@dataclass
class Car:
    charger: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy: float
    out: pd.Timestamp | None = None


@dataclass
class SessionModel:
    """The rules of grid.ingest.sessions, written again independently."""

    cars: dict[str, Car] = field(default_factory=dict)

    def free(self, sid: str, charger: str, arrival: pd.Timestamp, departure: pd.Timestamp) -> bool:
        return not any(
            other != sid and c.charger == charger and c.out is None and c.arrival < departure and c.departure > arrival
            for other, c in self.cars.items()
        )

    def create(self, sid: str, charger: str, a: int, d: int, e: float) -> bool:
        arrival, departure = NOW + a * H, NOW + (a + d) * H
        if d <= 0 or departure <= NOW or e < 0 or charger != "ev1":
            return False
        car = Car(charger, arrival, departure, e)
        if sid in self.cars:
            return self.cars[sid] == car
        if not self.free(sid, charger, arrival, departure):
            return False
        self.cars[sid] = car
        return True

    def change(self, sid: str, dep: int | None, e: float | None) -> bool:
        car = self.cars.get(sid)
        if (dep is None and e is None) or car is None or car.out is not None:
            return False
        departure = car.departure if dep is None else NOW + dep * H
        if departure <= car.arrival or departure <= NOW or (e is not None and e < 0):
            return False
        new = Car(car.charger, car.arrival, departure, car.energy if e is None else e)
        if new == car:
            return True
        if not self.free(sid, car.charger, car.arrival, departure):
            return False
        self.cars[sid] = new
        return True

    def plug_out(self, sid: str, minutes: int) -> bool:
        at = NOW + pd.Timedelta(minutes=minutes)
        car = self.cars.get(sid)
        if at > NOW + pd.Timedelta(minutes=5) or car is None:
            return False
        if car.out is not None:
            return True
        if at < car.arrival:
            return False
        car.out = at
        return True


ids = st.sampled_from(["a", "b", "c"])
session_events = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            ids,
            st.sampled_from(["ev1", "ev1", "bat1"]),
            st.integers(-3, 3),
            st.integers(-1, 4),
            st.sampled_from([-1.0, 0.0, 10.0, 30.0]),
        ),
        st.tuples(
            st.just("change"),
            ids,
            st.one_of(st.none(), st.integers(-2, 8)),
            st.one_of(st.none(), st.sampled_from([-1.0, 5.0, 10.0])),
        ),
        st.tuples(st.just("plug_out"), ids, st.integers(-300, 30)),
    ),
    max_size=14,
)


def _apply(engine: Engine, site: str, event: tuple[Any, ...]) -> bool:
    kind, sid, *args = event
    try:
        if kind == "create":
            charger, a, d, e = args
            body = {
                "session_id": sid,
                "charger": charger,
                "arrival": (NOW + a * H).isoformat(),
                "departure": (NOW + (a + d) * H).isoformat(),
                "energy_needed_kwh": e,
            }
            create_session(engine, site, body, "api", NOW)
        elif kind == "change":
            dep, e = args
            body = {
                k: v
                for k, v in {
                    "departure": None if dep is None else (NOW + dep * H).isoformat(),
                    "energy_needed_kwh": e,
                }.items()
                if v is not None
            }
            change_session(engine, site, sid, body, "api", NOW)
        else:
            plug_out(engine, site, sid, {"at": (NOW + pd.Timedelta(minutes=args[0])).isoformat()}, "api", NOW)
    except REFUSED:
        return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=session_events)
def test_sessions_stored_state_equals_accepted_events(prop_store: Engine, events: list[tuple[Any, ...]]) -> None:
    site = _site(prop_store)
    model = SessionModel()
    for event in events:
        expected = getattr(model, event[0])(*event[1:])
        assert _apply(prop_store, site, event) == expected, event
    stored = {
        s.session_id: Car(s.charger, s.arrival, s.departure, s.energy_needed_kwh, s.plugged_out_at)
        for s in list_sessions(prop_store, site, include_done=True)
    }
    assert stored == model.cars


# --- prices ---------------------------------------------------------------------------------------

DAY = pd.Timestamp("2026-01-16T00:00:00Z")
publications = st.lists(
    st.tuples(
        st.sampled_from([15, 60]),  # resolution
        st.integers(0, 8),  # first point, in steps of the resolution
        st.lists(st.sampled_from([-600.0, -20.0, 0.0, 55.5, 120.0, 4500.0]), min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pubs=publications)
def test_prices_as_of_equal_the_accepted_publications(prop_store: Engine, pubs: list[Any]) -> None:
    site = _site(prop_store)
    index = pd.date_range(DAY, periods=4 * 16, freq="15min", tz="UTC")
    expected = np.full(len(index), np.nan)
    for k, (minutes, first, prices) in enumerate(pubs):
        step = pd.Timedelta(minutes=minutes)
        points = [
            Point(f"prices[{i}]", {"start": (DAY + (first + i) * step).isoformat(), "price": p})
            for i, p in enumerate(prices)
        ]
        published = NOW - pd.Timedelta(hours=len(pubs) - k)  # later publications later
        ok = all(-500.0 <= p <= 4000.0 for p in prices)
        try:
            import_prices(prop_store, site, points, "EUR/MWh", published.isoformat(), "prop", NOW, minutes)
        except InputErrors:
            assert not ok
            continue
        assert ok
        for i, p in enumerate(prices):
            start = DAY + (first + i) * step
            expected[(index >= start) & (index < start + step)] = p / 1000.0
    got = prices_as_of(prop_store, site, NOW, index)
    published_part = (got["source"] == "published").to_numpy()
    assert (published_part == ~np.isnan(expected)).all()
    np.testing.assert_allclose(got["price_eur_per_kwh"].to_numpy()[published_part], expected[published_part])


# --- limit orders ---------------------------------------------------------------------------------

orders = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(["T1", "T1", "bat1"]),
            st.integers(-3, 3),
            st.integers(-1, 3),
            st.sampled_from([None, -5.0, 0.0, 120.0]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
    ),
    max_size=10,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=orders)
def test_active_orders_equal_the_accepted_ones(prop_store: Engine, steps: list[tuple[Any, ...]]) -> None:
    site = _site(prop_store)
    placed: list[str] = []
    live: dict[str, tuple[str, pd.Timestamp, pd.Timestamp, float | None]] = {}
    for step in steps:
        if step[0] == "cancel":
            if step[1] < len(placed):
                cancel_order(prop_store, site, placed[step[1]], NOW)
                live.pop(placed[step[1]], None)
            continue
        _, connection, a, d, kw = step
        start, end = NOW + a * H, NOW + (a + d) * H
        ok = connection == "T1" and d > 0 and end > NOW and kw is not None and kw >= 0
        body = {"connection": connection, "start": start.isoformat(), "end": end.isoformat(), "reason": "§14a"}
        if kw is not None:
            body["import_kw"] = kw
        try:
            order = place_order(prop_store, site, body, NOW)
        except (InputError, InputErrors):
            assert not ok, step
            continue
        assert ok, step
        placed.append(order.id)
        live[order.id] = (connection, start, end, kw)
    window = (NOW - 4 * H, NOW + 8 * H)
    got = {o.id: (o.connection, o.start, o.end, o.import_kw) for o in active_orders(prop_store, site, *window)}
    assert got == live
