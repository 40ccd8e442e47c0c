"""``GET /sites/{site}/performance`` (SQLite and PostgreSQL): readings posted over the API and a
stored plan, evaluated, come back as realised KPIs; roles; strict parameters."""

from __future__ import annotations

import json

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.schedule.performance import evaluate_intervals
from grid.store.plans import save_plan
from grid.timeindex import iso

BASE = "/api/v1/sites/demo"
T0 = pd.Timestamp("2026-01-14T00:00:00Z")  # the test clock is 2026-01-14T01:07Z
Q = pd.Timedelta(minutes=15)
PERIOD = {"start": "2026-01-14T01:00:00+01:00", "end": "2026-01-14T01:00:00Z"}


def _plan() -> dict[str, object]:
    stamps = [T0 + k * Q for k in range(4)]
    return {
        "plan_id": "f" * 32,
        "site": "demo",
        "computed_at": "2026-01-13T23:50:00+00:00",
        "start": iso(stamps[0]),
        "end": iso(stamps[-1] + Q),
        "resolution_min": 15,
        "status": "optimal",
        "message": "",
        "objective_eur": 1.0,
        "kpis": {},
        "violations": [],
        "dimming": [],
        "intervals": [iso(t) for t in stamps],
        "connections": {"T1": {"import_kw": [10.0] * 4, "limit_import_kw": [12.0] * 4}},
        "assets": {},
    }


def test_performance_over_the_api(client: TestClient, key: dict[str, str], store: Engine) -> None:
    # T1's import register: 2.5, 2.5, 3.5, 2.5 kWh per quarter-hour = 10, 10, 14, 10 kW
    register = [100.0, 102.5, 105.0, 108.5, 111.0]
    items = [
        {"meter_id": "T1", "obis": "1-0:1.8.0", "ts": iso(T0 + k * Q), "value": v, "unit": "kWh"}
        for k, v in enumerate(register)
    ]
    posted = client.post(f"{BASE}/readings", json={"readings": items}, headers={"X-API-Key": key["ingest"]})
    assert posted.status_code == 200 and posted.json()["accepted"] == 5, posted.text
    body = _plan()
    save_plan(store, body, plan_json=json.dumps(body))
    manager = {"X-API-Key": key["manager"]}
    before = client.get(f"{BASE}/performance", params=PERIOD, headers=manager)
    assert before.status_code == 200, before.text
    assert before.json()["not_evaluated_intervals"] == 4 and before.json()["totals"]["import_kwh"] is None

    assert evaluate_intervals(store, "demo", T0, T0 + 4 * Q) == 4
    r = client.get(f"{BASE}/performance", params=PERIOD, headers=manager)
    assert r.status_code == 200, r.text
    k = r.json()
    assert (k["start"], k["end"], k["intervals"], k["evaluated_intervals"]) == (
        "2026-01-14T00:00:00+00:00",
        "2026-01-14T01:00:00+00:00",
        4,
        4,
    )
    t1 = k["connections"]["T1"]
    # one interval at 14 kW above the 12 kW limit: 2 kW x 0.25 h; import (10 + 10 + 14 + 10) x 0.25
    assert (t1["intervals_above_limit"], t1["kwh_above_limit"], t1["import_kwh"]) == (1, 0.5, 11.0)
    assert t1["cost_eur"] is None and t1["unpriced_intervals"] == 4  # no price published: no cost, not 0
    assert k["totals"]["intervals_above_limit"] == 1

    assert client.get(f"{BASE}/performance", params=PERIOD, headers={"X-API-Key": key["operator"]}).status_code == 403
    assert client.get("/api/v1/sites/nowhere/performance", params=PERIOD, headers=manager).status_code in (403, 404)
    bad = client.get(f"{BASE}/performance", params={**PERIOD, "start": "2026-01-14T00:00:00"}, headers=manager)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "start"]
    backwards = client.get(f"{BASE}/performance", params={**PERIOD, "end": PERIOD["start"]}, headers=manager)
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == ["query", "end"]
