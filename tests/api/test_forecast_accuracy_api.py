"""GET /sites/{site}/forecasts/accuracy against the real app: the hand-computed small case of
tests/forecast/test_accuracy.py on measured registers of the demo site, roles, bad parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.domain import load_site
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from tests.forecast.test_accuracy import T0, store_hand_case

URL = "/api/v1/sites/demo/forecasts/accuracy"
PERIOD = {"start": "2026-01-20T22:45:00Z", "end": "2026-01-21T01:45:00+00:00"}


def measure(store: Engine, site_yaml: Path) -> None:
    """Import and export registers (kWh) of every household of the demo site, T0 - 1 h .. T0 + 4 h."""
    site = load_site(site_yaml)
    stamps = pd.date_range(T0 - pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=4), freq="15min")
    rng = np.random.default_rng(3)
    rows: list[dict[str, object]] = []
    for h in site.households:
        cumulative = 500.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.2, 2.0, len(stamps) - 1) * 0.25)])
        for obis, values in (("1-0:1.8.0", cumulative), ("1-0:2.8.0", np.full(len(stamps), 10.0))):
            rows += [
                {"meter_id": h.meter_id, "obis": obis, "timestamp": t.isoformat(), "value": v, "unit": "kWh"}
                for t, v in zip(stamps, values, strict=True)
            ]
    for i, row in enumerate(rows):
        row["line"] = i + 2
    report = ingest(
        store,
        "demo",
        records_frame(rows),
        Source("test", "synthetic"),
        IngestOptions(now=pd.Timestamp("2026-06-01T00:00Z")),
    )
    assert report.rejected == []


def test_endpoint_equals_the_hand_computation(
    store: Engine, client: TestClient, key: dict[str, str], sites: dict[str, Path]
) -> None:
    measure(store, sites["demo"])
    expected = store_hand_case(store, "demo")
    r = client.get(URL, params=PERIOD, headers={"X-API-Key": key["manager"]})
    assert r.status_code == 200, r.text
    body = r.json()
    head = (body["site"], body["target"], body["quantity"], body["unit"], body["runs"])
    assert head == ("demo", "site", "power_kw", "kW", 2)
    assert body["start"] == T0.isoformat()
    assert body["overall"] == pytest.approx(expected["overall"])
    assert [d.pop("day") for d in body["by_day"]] == list(expected["by_day"])
    assert body["by_day"] == [pytest.approx(row) for row in expected["by_day"].values()]
    assert [h.pop("horizon_h") for h in body["by_horizon"]] == list(expected["by_horizon"])
    assert body["by_horizon"] == [pytest.approx(row) for row in expected["by_horizon"].values()]


def test_roles_and_bad_parameters(store: Engine, client: TestClient, key: dict[str, str]) -> None:
    manager = {"X-API-Key": key["manager"]}
    assert client.get(URL, params=PERIOD, headers={"X-API-Key": key["operator"]}).status_code == 403
    assert client.get(URL, params=PERIOD).status_code == 401
    bad = client.get(URL, params={**PERIOD, "start": "2026-01-20 22:45"}, headers=manager)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "start"
    pv = client.get(URL, params={**PERIOD, "target": "pv:PV-H1"}, headers=manager)
    assert pv.status_code == 422 and pv.json()["detail"][0]["loc"][-1] == "target", pv.text
    empty = client.get(URL, params=PERIOD, headers=manager)
    assert empty.status_code == 200, empty.text
    assert empty.json()["overall"]["n"] == 0 and empty.json()["by_day"] == []
