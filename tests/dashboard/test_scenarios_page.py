"""The Scenarios page in Chromium as a planner: run a scenario file and typed-in edits, follow the
run, the KPI comparison as bars and a table equal to the API's, the downloads equal to the API's
exports, a sweep file as a heat map of its cases, roles and sites, 1280 and 375 px."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.dashboard.conftest import Served
from tests.dashboard.test_browser import Tab

DONE = "body[data-scenario]:not([data-scenario=running])"


@pytest.fixture
def planner(browser: Any, served: Served) -> Iterator[Tab]:
    t = Tab(browser, served, width=1280, height=800)
    t.sign_in(served.keys["planner"], expect="scenarios")
    yield t
    t.close()


def _run(tab: Tab, choice: str) -> str:
    """Run `choice` from the form; wait (no time limit) until the page shows the run finished."""
    tab.page.evaluate("document.body.removeAttribute('data-scenario')")
    tab.page.select_option("#sc-file", choice)
    tab.page.click("#sc-run")
    tab.page.wait_for_selector(DONE, timeout=0)
    state: str = tab.page.get_attribute("body", "data-scenario")
    return state


def _api_bytes(served: Served, path: str) -> bytes:
    r = httpx.get(f"{served.url}{path}", headers={"X-API-Key": served.keys["planner"]}, timeout=30)
    r.raise_for_status()
    return r.content


def _download(tab: Tab, selector: str) -> bytes:
    with tab.page.expect_download() as download:
        tab.page.click(selector)
    return Path(download.value.path()).read_bytes()


def test_planner_runs_a_scenario_file(planner: Tab, served: Served) -> None:
    offered = planner.page.eval_on_selector_all("#sc-file option", "os => os.map(o => o.value)")
    assert offered == ["battery.yaml", "sweep.yaml", "__json__"]  # not north's file, not notes.yaml
    assert _run(planner, "battery.yaml") == "succeeded"
    runs = served.api("/api/v1/sites/demo/scenarios", "planner")["runs"]
    run = next(r for r in runs if r["name"] == "battery_100")
    api = served.api(f"/api/v1/sites/demo/scenarios/{run['run_id']}", "planner")
    comparison = {c["kpi"]: c for c in api["result"]["comparison"]}
    assert "succeeded" in planner.page.inner_text("#sc-progress")
    # the change chart: every KPI with a relative change, in % of the baseline
    bars = planner.page.eval_on_selector("#sc-delta-chart", "el => ({y: el.data[0].y, x: el.data[0].x})")
    assert bars["y"] and all(comparison[k]["delta_rel"] is not None for k in bars["y"])
    for k, x in zip(bars["y"], bars["x"], strict=True):
        assert abs(x - 100 * comparison[k]["delta_rel"]) < 1e-6, k
    # baseline and scenario side by side for the KPIs in EUR
    grouped = planner.page.eval_on_selector("#sc-bars-chart", "el => el.data.map(t => [t.name, t.x, t.y])")
    assert [g[0] for g in grouped] == ["baseline", "scenario"] and "cost_eur" in grouped[0][1]
    i = grouped[0][1].index("cost_eur")
    cost = comparison["cost_eur"]
    assert grouped[0][2][i] == cost["baseline"] and grouped[1][2][i] == cost["value"]
    # the table: one row per KPI of the API's comparison, in its order
    cells = planner.page.eval_on_selector_all("#sc-cmp tr", "rs => rs.slice(1).map(r => r.cells[0].innerText)")
    assert cells == [c["kpi"] for c in api["result"]["comparison"]]
    # the downloads are the API's exports, byte for byte
    base = f"/api/v1/sites/demo/scenarios/{run['run_id']}"
    assert _download(planner, "#sc-cmp-csv") == _api_bytes(served, f"{base}/comparison.csv")
    parquet = pd.read_parquet(io.BytesIO(_download(planner, "#sc-res-parquet")))
    pd.testing.assert_frame_equal(parquet, pd.read_parquet(io.BytesIO(_api_bytes(served, f"{base}/results.parquet"))))
    planner.shot("scenario-run")
    planner.no_errors()


def test_typed_edits_named_when_wrong_then_run(planner: Tab, served: Served) -> None:
    planner.page.select_option("#sc-file", "__json__")
    assert planner.page.is_visible("#sc-json")
    planner.page.fill(
        "#sc-json", '{"name": "bad", "edits": [{"kind": "add_battery", "connection": "T1", "capacity_kwh": -5}]}'
    )
    assert _run(planner, "__json__") == "refused"
    error = planner.page.inner_text("#error")
    assert error.startswith("422: ") and "edits.0.capacity_kwh" in error, error
    planner.errors.clear()  # the refused request is logged by the browser: expected
    planner.page.fill("#sc-json", '{"name": "typed_pv", "edits": [{"kind": "scale_pv", "scale": 1.5}]}')
    assert _run(planner, "__json__") == "succeeded"
    assert planner.page.is_hidden("#error")
    rows = planner.page.eval_on_selector_all("#sc-table tr[data-run]", "rs => rs.map(r => r.cells[0].innerText)")
    assert "typed_pv" in rows
    planner.no_errors()


def test_sweep_as_heat_map(planner: Tab, served: Served) -> None:
    assert _run(planner, "sweep.yaml") == "sweep-done"
    assert "4 of 4 cases finished" in planner.page.inner_text("#sc-sweep-title")
    runs = {r["name"]: r for r in served.api("/api/v1/sites/demo/scenarios", "planner", limit=500)["runs"]}
    deltas = {}
    for k, params in enumerate([(50, 1.0), (50, 2.0), (200, 1.0), (200, 2.0)]):  # last parameter fastest
        run = runs[f"size_sweep-case-{k:03d}"]
        api = served.api(f"/api/v1/sites/demo/scenarios/{run['run_id']}", "planner")
        deltas[params] = next(c["delta"] for c in api["result"]["comparison"] if c["kpi"] == "cost_eur")
    heat = planner.page.eval_on_selector(
        "#sw-heat", "el => ({x: el.data[0].x, y: el.data[0].y, z: el.data[0].z, type: el.data[0].type})"
    )
    assert heat["type"] == "heatmap" and heat["x"] == ["50", "200"] and heat["y"] == ["1", "2"]
    for yi, pv in enumerate((1.0, 2.0)):
        for xi, kwh in enumerate((50, 200)):
            assert heat["z"][yi][xi] == pytest.approx(deltas[(kwh, pv)], abs=1e-9)
    table = planner.page.eval_on_selector_all("#sw-table tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    assert [r[0] for r in table[1:]] == [
        "battery_kwh=50,pv_scale=1.0",
        "battery_kwh=50,pv_scale=2.0",
        "battery_kwh=200,pv_scale=1.0",
        "battery_kwh=200,pv_scale=2.0",
    ]
    assert table[0][:3] == ["case", "status", "cost_eur"] and len(table[0]) < 20  # a few KPIs; the files: all
    frame = pd.read_csv(io.BytesIO(_download(planner, "#sw-csv")))
    assert len(frame) == 4 and {"cost_eur", "cost_eur.delta", "param.battery_kwh"} <= set(frame.columns)
    assert list(frame["cost_eur.delta"]) == pytest.approx([deltas[p] for p in sorted(deltas)], abs=1e-6)
    planner.shot("scenario-sweep")
    planner.page.set_viewport_size({"width": 375, "height": 740})
    planner.page.wait_for_timeout(300)  # Plotly's resize handler
    assert planner.page.evaluate("document.documentElement.scrollWidth") <= 375
    planner.shot("375-scenario-sweep")
    planner.no_errors()


def test_roles_and_sites(browser: Any, served: Served) -> None:
    t = Tab(browser, served)
    try:
        t.sign_in(served.keys["manager"])
        assert t.page.is_hidden(".tab[data-page=scenarios]")
        refused = t.page.request.post(
            f"{served.url}/dashboard/api/sites/demo/scenarios",
            data={"file": "battery.yaml"},
            headers={"X-Requested-With": "quartiere-dashboard"},
        )
        assert refused.status == 403
        assert t.page.request.get(f"{served.url}/dashboard/api/sites/demo/scenario-files").status == 403
        t.no_errors()
    finally:
        t.close()
    with httpx.Client(base_url=served.url, headers={"X-API-Key": served.keys["planner"]}) as c:
        assert c.get("/dashboard/api/sites/north/scenario-files").status_code == 403  # a demo key
        no_header = c.post("/dashboard/api/sites/demo/scenarios", json={"file": "battery.yaml"})
        assert no_header.status_code == 403  # not from the page
        head = {"X-Requested-With": "quartiere-dashboard"}
        assert (
            c.post("/dashboard/api/sites/demo/scenarios", json={"file": "north.yaml"}, headers=head).status_code == 404
        )  # north's file is not demo's
        assert c.get("/dashboard/api/sites/demo/sweep", params={"file": "battery.yaml"}).status_code == 404
