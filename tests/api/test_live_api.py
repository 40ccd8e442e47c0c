"""Live data over the API (SQLite and PostgreSQL): telemetry, EV sessions, prices, weather and
limit orders; roles (ingest writes, manager reads); bad input answers 422 naming the field; a
limit order starts a re-plan at once."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.store.live import active_orders, latest_states, sessions_in
from grid.store.schema import rejected_records

BASE = "/api/v1/sites/demo"
# the test clock: 2026-01-14T01:07Z
SESSION = {
    "session_id": "car-1",
    "charger": "EV-H013",
    "arrival": "2026-01-14T02:00:00+01:00",
    "departure": "2026-01-14T08:00:00+01:00",
    "energy_needed_kwh": 12.0,
}
ORDER = {
    "connection": "T1",
    "start": "2026-01-14T01:15:00Z",
    "end": "2026-01-14T03:00:00Z",
    "import_kw": 50.0,
    "reason": "§14a",
}


def _h(key: dict[str, str], role: str) -> dict[str, str]:
    return {"X-API-Key": key[role]}


def _locs(r: Any) -> list[str]:
    return [str(d["loc"][0]) for d in r.json()["detail"]]


def test_telemetry_partly_bad_then_all_bad(client: TestClient, key: dict[str, str], store: Engine) -> None:
    items = [
        {"asset_id": "BAT-H008", "ts": "2026-01-14T01:00:00Z", "soc_kwh": 7.0, "power_kw": 2.0},
        {"asset_id": "BAT-H008", "ts": "2026-01-14T01:05:00Z", "soc_pct": 150},
        {"asset_id": "HP-H005", "ts": "2026-01-14T01:00:00Z", "store_kwh": 12.5},
    ]
    r = client.post(f"{BASE}/telemetry", json={"telemetry": items}, headers=_h(key, "ingest"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows_read"], report["accepted"]) == (4, 3)
    assert [(x["where"], x["field"]) for x in report["rejected"]] == [("payload telemetry[1]", "soc_pct")]
    assert latest_states(store, "demo", "2026-01-14T02:00:00Z")["BAT-H008"][0] == 7.0
    bad = client.post(
        f"{BASE}/telemetry",
        json={"telemetry": [{"asset_id": "ghost", "ts": "2026-01-14T01:00:00Z", "soc_kwh": 1}]},
        headers=_h(key, "ingest"),
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["payload telemetry[0]", "asset_id"]
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(rejected_records)).scalar_one() == 2
    latest = client.get(f"{BASE}/telemetry/latest", headers=_h(key, "manager"))
    assert latest.status_code == 200 and latest.json()["states"]["HP-H005"]["value_kwh"] == 12.5
    assert client.get(f"{BASE}/telemetry/latest", headers=_h(key, "ingest")).status_code == 403
    assert client.post(f"{BASE}/telemetry", json={"telemetry": []}, headers=_h(key, "manager")).status_code == 403


def test_ev_session_create_change_plug_out(client: TestClient, key: dict[str, str], store: Engine) -> None:
    h = _h(key, "ingest")
    r = client.post(f"{BASE}/ev-sessions", json=SESSION, headers=h)
    assert r.status_code == 201, r.text
    assert client.post(f"{BASE}/ev-sessions", json=SESSION, headers=h).status_code == 200  # sent again
    assert client.post(f"{BASE}/ev-sessions", json={**SESSION, "energy_needed_kwh": 3}, headers=h).status_code == 409
    other = {**SESSION, "session_id": "car-2"}
    assert client.post(f"{BASE}/ev-sessions", json=other, headers=h).status_code == 409  # charger taken
    r = client.patch(f"{BASE}/ev-sessions/car-1", json={"departure": "2026-01-14T09:30:00+01:00"}, headers=h)
    assert r.status_code == 200 and r.json()["departure"] == "2026-01-14T08:30:00+00:00"
    assert client.patch(f"{BASE}/ev-sessions/nope", json={"energy_needed_kwh": 1}, headers=h).status_code == 404
    (active,) = sessions_in(store, "demo", "2026-01-14T01:00:00Z", "2026-01-14T12:00:00Z")
    assert active.session_id == "car-1" and active.energy_needed_kwh == 12.0
    r = client.post(f"{BASE}/ev-sessions/car-1/plug-out", json={"at": "2026-01-14T00:30:00Z"}, headers=h)
    assert r.status_code == 422 and _locs(r) == ["at"]  # before the arrival
    r = client.post(f"{BASE}/ev-sessions/car-1/plug-out", headers=h)
    assert r.status_code == 200 and r.json()["plugged_out_at"] == "2026-01-14T01:07:00+00:00"
    assert sessions_in(store, "demo", "2026-01-14T01:15:00Z", "2026-01-14T12:00:00Z") == []
    one = client.get(f"{BASE}/ev-sessions/car-1", headers=_h(key, "manager")).json()
    assert [e["kind"] for e in one["events"]] == ["created", "changed", "plugged_out"]
    listed = client.get(f"{BASE}/ev-sessions", params={"include_done": True}, headers=_h(key, "manager")).json()
    assert [s["session_id"] for s in listed["sessions"]] == ["car-1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"charger": "BAT-H008"}, "charger"),
        ({"departure": "2026-01-14T01:30:00+01:00"}, "departure"),
        ({"arrival": "2026-01-14T02:00:00"}, "arrival"),
        ({"energy_needed_kwh": None, "target_soc": 0.9}, "capacity_kwh"),
        ({"energy_needed_kwh": -1}, "energy_needed_kwh"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_sessions_name_the_field(
    client: TestClient, key: dict[str, str], change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**SESSION, **change}.items() if v is not None}
    r = client.post(f"{BASE}/ev-sessions", json=body, headers=_h(key, "ingest"))
    assert r.status_code == 422, r.text
    assert any(field in map(str, d["loc"]) for d in r.json()["detail"]), r.text


def test_prices_put_and_read_with_forecast(client: TestClient, key: dict[str, str]) -> None:
    doc = {
        "published_at": "2026-01-14T00:00:00Z",
        "source": "epex",
        "unit": "EUR/MWh",
        "prices": [{"start": f"2026-01-14T{h:02d}:00:00Z", "price": 100.0 + h} for h in range(24)],
    }
    r = client.put(f"{BASE}/prices", json=doc, headers=_h(key, "ingest"))
    assert r.status_code == 200 and r.json()["points"] == 24, r.text
    params = {"start": "2026-01-14T23:00:00Z", "end": "2026-01-15T01:00:00Z"}
    series = client.get(f"{BASE}/prices", params=params, headers=_h(key, "manager")).json()
    assert series["source"] == ["published"] * 4 + ["same_hour_last_day"] * 4
    assert series["price_eur_per_kwh"][0] == pytest.approx(0.123)
    assert series["price_eur_per_kwh"][4] == pytest.approx(0.1)  # 00:00 of the day before
    bad = {
        **doc,
        "prices": [{"start": "2026-01-15T00:00:00", "price": 1}, {"start": "2026-01-15T01:00:00Z", "price": 9e9}],
    }
    r = client.put(f"{BASE}/prices", json=bad, headers=_h(key, "ingest"))
    assert r.status_code == 422 and _locs(r) == ["prices[0].start", "prices[1].price"]
    future = {**doc, "published_at": "2026-01-14T03:00:00Z"}
    r = client.put(f"{BASE}/prices", json=future, headers=_h(key, "ingest"))
    assert r.status_code == 422 and _locs(r) == ["published_at"]
    weather = {
        "published_at": "2026-01-14T00:00:00Z",
        "quantity": "temp_degc",
        "points": [{"start": "2026-01-14T02:00:00Z", "value": -3.5}],
    }
    assert client.put(f"{BASE}/weather", json=weather, headers=_h(key, "ingest")).status_code == 200


def test_limit_order_replans_at_once_and_is_kept(
    app: FastAPI, client: TestClient, key: dict[str, str], store: Engine
) -> None:
    r = client.post(f"{BASE}/limits", json=ORDER, headers=_h(key, "ingest"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["order"]["import_kw"] == 50.0 and body["order"]["reason"] == "§14a"
    job = app.state.ctx.jobs.wait(body["replan_job"]["job_id"], 120)
    assert job.trigger == "limit_order" and job.status == "succeeded", job.message
    assert r.headers["Location"] == body["replan_job"]["job_url"]
    (order,) = active_orders(store, "demo", "2026-01-14T01:00:00Z", "2026-01-14T02:00:00Z")
    assert order.id == body["order"]["id"]
    listed = client.get(f"{BASE}/limits", headers=_h(key, "manager")).json()
    assert [o["id"] for o in listed["orders"]] == [order.id]
    r = client.post(f"{BASE}/limits/{order.id}/cancel", headers=_h(key, "ingest"))
    assert r.status_code == 200 and r.json()["order"]["cancelled_at"] == "2026-01-14T01:07:00+00:00"
    app.state.ctx.jobs.wait(r.json()["replan_job"]["job_id"], 120)
    assert active_orders(store, "demo", "2026-01-14T01:00:00Z", "2026-01-14T02:00:00Z") == []
    assert client.post(f"{BASE}/limits/nope/cancel", headers=_h(key, "ingest")).status_code == 404


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"connection": "T9"}, ["connection"]),
        ({"end": "2026-01-14T01:00:00Z"}, ["end"]),
        ({"import_kw": None}, ["import_kw"]),
        ({"start": "2026-01-14T01:15:00", "reason": ""}, ["body"]),  # schema: reason min length
    ],
)
def test_bad_orders_name_the_field(
    client: TestClient, key: dict[str, str], change: dict[str, Any], fields: list[str]
) -> None:
    body = {k: v for k, v in {**ORDER, **change}.items() if v is not None}
    r = client.post(f"{BASE}/limits", json=body, headers=_h(key, "ingest"))
    assert r.status_code == 422, r.text
    assert _locs(r) == fields
    assert client.get(f"{BASE}/limits", headers=_h(key, "manager")).json()["orders"] == []


#: every live-data operation: (method, path under the site, body); writes need ingest, reads manager
OPERATIONS: list[tuple[str, str, Any, str]] = [
    (
        "POST",
        "/telemetry",
        {"telemetry": [{"asset_id": "BAT-H008", "ts": "2026-01-14T01:00:00Z", "soc_kwh": 1}]},
        "ingest",
    ),
    ("GET", "/telemetry/latest", None, "manager"),
    ("POST", "/ev-sessions", SESSION, "ingest"),
    ("GET", "/ev-sessions", None, "manager"),
    ("GET", "/ev-sessions/car-1", None, "manager"),
    ("PATCH", "/ev-sessions/car-1", {"energy_needed_kwh": 5}, "ingest"),
    ("POST", "/ev-sessions/car-1/plug-out", None, "ingest"),
    (
        "PUT",
        "/prices",
        {"published_at": "2026-01-14T00:00:00Z", "prices": [{"start": "2026-01-14T02:00:00Z", "price": 1}]},
        "ingest",
    ),
    ("GET", "/prices?start=2026-01-14T00:00:00Z&end=2026-01-14T02:00:00Z", None, "manager"),
    (
        "PUT",
        "/weather",
        {"published_at": "2026-01-14T00:00:00Z", "points": [{"start": "2026-01-14T02:00:00Z", "value": 1}]},
        "ingest",
    ),
    ("POST", "/limits", ORDER, "ingest"),
    ("GET", "/limits", None, "manager"),
    ("POST", "/limits/nope/cancel", None, "ingest"),
]


def test_roles_write_ingest_read_manager(client: TestClient, key: dict[str, str]) -> None:
    for method, path, body, allowed in OPERATIONS:
        for role in ("operator", "manager", "planner", "ingest", "admin"):
            for site in ("demo", "north"):
                r = client.request(method, f"/api/v1/sites/{site}{path}", json=body, headers=_h(key, role))
                denied = site == "north" or role not in (allowed, "admin")
                assert (r.status_code == 403) == denied, (method, path, role, site, r.status_code, r.text)
        r = client.request(method, f"{BASE}{path}", json=body)
        assert r.status_code == 401, (method, path)


def test_refused_requests_are_kept_as_rejected_records(client: TestClient, key: dict[str, str], store: Engine) -> None:
    h = _h(key, "ingest")
    assert client.post(f"{BASE}/ev-sessions", json={**SESSION, "charger": "T1"}, headers=h).status_code == 422
    order = {**ORDER, "connection": "T9", "import_kw": None, "export_kw": None}
    assert client.post(f"{BASE}/limits", json=order, headers=h).status_code == 422
    bad = {"published_at": "2026-01-14T00:00:00Z", "prices": [{"start": "2026-01-14T02:00:00", "price": 1}]}
    assert client.put(f"{BASE}/prices", json=bad, headers=h).status_code == 422
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(rejected_records.c.source, rejected_records.c.field, rejected_records.c.raw)
        ).all()
    kept = sorted((str(s), str(f)) for s, f, _ in rows)
    assert kept == [
        ("POST ev-sessions", "charger"),
        ("POST limits", "connection"),
        ("POST limits", "import_kw"),
        ("PUT prices", "prices[0].start"),
    ]
    assert all('"T1"' in raw or '"T9"' in raw or "prices" in raw for _, _, raw in rows)
