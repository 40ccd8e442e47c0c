"""The web dashboard: the page needs no key, names only endpoints the API has, and loads nothing
from outside the service."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes.dashboard import ENDPOINTS


def _config(html: str) -> dict[str, object]:
    found = re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


def test_page_uses_endpoints_the_api_has(app: FastAPI, client: TestClient) -> None:
    r = client.get("/dashboard")  # no key: the page holds no data
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    config = _config(r.text)
    assert config["endpoints"] == ENDPOINTS and config["timezone"] == "Europe/Berlin"
    paths = client.get("/openapi.json").json()["paths"]
    for name, path in ENDPOINTS.items():
        full = f"{config['prefix']}{path}"
        assert "get" in paths.get(full, {}), f"{name}: {full} is not a GET operation of the API"
    script = client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for name in ENDPOINTS:  # every endpoint of the config is used by the script
        assert f'"{name}"' in script.text, name
    assert "X-API-Key" in script.text and "sessionStorage" in script.text
    style = client.get("/dashboard/static/dashboard.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert "/dashboard/static/dashboard.js" in r.text and "/dashboard/static/dashboard.css" in r.text
    for text in (r.text, script.text, style.text):  # no CDN: nothing is loaded from another host
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
        assert "import(" not in text


def test_only_the_dashboard_files_are_served(app: FastAPI, client: TestClient) -> None:
    assert client.get("/dashboard/static/dashboard.html").status_code == 404
    assert client.get("/dashboard/static/..%2Ftemplates%2Fdashboard.html").status_code == 404
    assert "/dashboard" not in client.get("/openapi.json").json()["paths"]


def test_dashboard_data_flow(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    """What the page fetches with an admin key answers JSON of the shape the script reads."""
    app.state.ctx.service.run("demo", app.state.ctx.clock())
    h = {"X-API-Key": key["admin"]}
    latest = client.get("/api/v1/sites/demo" + "/plans/latest", headers=h).json()
    plan = latest["plan"]
    n = len(plan["intervals"])
    assert {"status", "stale", "stale_reason", "computed_at", "start", "end"} <= set(latest)
    for connection in plan["connections"].values():
        assert len(connection["import_kw"]) == n and len(connection["limit_import_kw"]) == n
    batteries = [a for a in plan["assets"].values() if a["type"] == "battery"]
    assert batteries and all(len(b["soc_kwh"]) in (n, n + 1) for b in batteries)
    setpoints = client.get("/api/v1/sites/demo/setpoints", params={"horizon": 4}, headers=h).json()
    assert {"intervals", "assets", "valid_until", "stale"} <= set(setpoints)
    targets = client.get("/api/v1/sites/demo/forecasts/targets", headers=h).json()
    assert targets["targets"] == []  # nothing forecast in this app: the page says so
