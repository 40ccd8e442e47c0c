"""The dashboard in Debian's Chromium (Playwright), against the real served app: sign in, every
page, the charts' traces and point counts against the API's numbers, hover units, Berlin time
across DST, CSV download, roles and sites, 375 px layout, bytes on the wire; no console errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import ARTIFACTS, MEASURED_KW, Served

PAGES = ("overview", "grid", "assets", "forecasts", "performance")
MB = 1_000_000


class Tab:
    """A browser page with its console errors and the bytes of every finished response."""

    def __init__(self, browser: Any, served: Served, width: int = 1366, height: int = 768) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.wire: list[tuple[str, int]] = []
        self.served = served
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        sizes = request.sizes()
        self.wire.append((request.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))

    def sign_in(self, key: str, expect: str = "overview") -> None:
        self.page.goto(f"{self.served.url}/dashboard#{expect.removesuffix('-error')}")
        self.page.wait_for_selector("body[data-loaded=login]")
        self.page.fill("#key", key)
        self.page.click("#login button[type=submit]")
        self.page.wait_for_selector(f"body[data-loaded={expect}]")

    def show(self, page: str) -> None:
        self.page.click(f".tab[data-page={page}]")
        self.page.wait_for_selector(f"body[data-loaded={page}]")

    def traces(self, selector: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.page.eval_on_selector(
            selector, "el => el.data.map(t => ({name: t.name, x: t.x, y: t.y, hover: t.hovertemplate}))"
        )
        return data

    def until(self, expression: str) -> None:
        """Poll `expression` (page.wait_for_function would eval a string: the page's CSP forbids it)."""
        for _ in range(600):
            if self.page.evaluate(expression):
                return
            self.page.wait_for_timeout(50)
        raise AssertionError(f"never true: {expression}")

    def no_errors(self) -> None:
        assert not self.errors, "console errors:\n" + "\n".join(self.errors)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, served: Served) -> Iterator[Tab]:
    t = Tab(browser, served)
    yield t
    t.close()


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def _close(a: list[float], b: list[float], tol: float = 2e-3) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_pages_draw_the_api_numbers(tab: Tab, served: Served) -> None:
    plan = served.api("/api/v1/sites/demo/plans/latest")["plan"]
    n = len(plan["intervals"])
    tab.sign_in(served.keys["admin"])
    # overview: counts and the per-day table against the plan
    assert tab.page.inner_text("#violations-card b") == str(len(plan["violations"]))
    assert tab.page.inner_text("#dimmings-card b") == str(len(plan["dimming"]))
    rows = tab.page.eval_on_selector_all("#kpis tr", "rs => rs.slice(1).map(r => [...r.cells].map(c => c.innerText))")
    imports: dict[str, float] = {}
    costs: dict[str, float] = {}
    co2: dict[str, float] = {}
    conns = plan["connections"].values()
    for i, t in enumerate(plan["intervals"]):
        day = dt.datetime.fromisoformat(t).astimezone(dt.timezone(dt.timedelta(hours=1))).date().isoformat()  # CET
        imports[day] = imports.get(day, 0.0) + sum(c["import_kw"][i] for c in conns) / 4
        costs[day] = costs.get(day, 0.0) + sum(c["cost_eur"][i] for c in conns)
        co2[day] = co2.get(day, 0.0) + sum(c["co2_kg"][i] for c in conns)
    assert len(rows) == len(imports)
    for row, day in zip(rows, sorted(imports), strict=True):
        assert day in row[0] and row[2:5] == [f"{costs[day]:.2f}", f"{co2[day]:.1f}", f"{imports[day]:.1f}"]
    # the days' costs and the horizon's peak charge and battery wear add up to the plan's cost
    k = plan["kpis"]
    wear = k["throughput_cost_eur"]
    assert sum(costs.values()) + k["peak_charge_eur"] + wear == pytest.approx(k["cost_eur"], abs=1e-3)
    assert sum(co2.values()) == pytest.approx(k["co2_kg"], abs=1e-3)
    assert "EUR" in tab.page.inner_text("#status") and "stale" in tab.page.inner_text("#status")
    tab.shot("overview")

    tab.show("grid")
    for cid, c in plan["connections"].items():
        traces = {t["name"]: t for t in tab.traces(f"div.chart[data-connection={cid}]")}
        imp = traces["planned import"]
        assert len(imp["x"]) == n and imp["x"][0] == _ms(plan["intervals"][0])
        assert _close(imp["y"], c["import_kw"]) and _close(traces["import limit"]["y"], c["limit_import_kw"])
        assert _close(traces["planned export"]["y"], [-v for v in c["export_kw"]])
        assert _close(traces["marginal price"]["y"], c["marginal_price_eur_per_kwh"], 1e-3)
        assert "kW" in imp["hover"] and "EUR/kWh" in traces["marginal price"]["hover"]
    feeders = {cid: c["feeders"] for cid, c in plan["connections"].items() if c.get("feeders")}
    assert feeders  # the demo's transformers have two feeders each
    for cid, fs in feeders.items():
        drawn = {t["name"]: t for t in tab.traces(f"div.chart[data-feeders-of={cid}]")}
        for fid, f in fs.items():
            assert _close(drawn[f"{fid} net draw"]["y"], f["net_kw"][:n]) and "kW" in drawn[f"{fid} net draw"]["hover"]
            assert drawn[f"{fid} limits"]["y"] == [f["limit_import_kw"]] * 2
    measured = tab.traces("div.chart[data-connection=T1]")[0]
    assert measured["name"] == "measured import" and len(measured["x"]) == 2 * 96  # two days of quarter-hours
    assert measured["x"][-1] + 15 * 60000 == _ms(plan["intervals"][0])
    assert [v for v in measured["y"] if v is not None] == MEASURED_KW
    ticks = tab.page.eval_on_selector("div.chart", "el => el.layout.xaxis.ticktext")
    assert ticks and all(":00" in t for t in ticks)
    assert tab.page.eval_on_selector("div.chart", "el => el.layout.xaxis.title.text") == "Europe/Berlin"
    # zoom to 2 h: the Berlin ticks follow the new range (hourly)
    a, b = _ms(plan["intervals"][0]), _ms(plan["intervals"][0]) + 2 * 3600_000
    zoom = f"el => Plotly.relayout(el, {{'xaxis.range[0]': {a}, 'xaxis.range[1]': {b}}})"
    tab.page.eval_on_selector("div.chart", zoom)
    tab.until(f"document.querySelector('div.chart').layout.xaxis.tickvals[0] >= {a}")
    zoomed = tab.page.eval_on_selector("div.chart", "el => el.layout.xaxis.tickvals")
    assert zoomed == [a + 3600_000 * k for k in range(3)]  # the plan starts on a full hour
    tab.shot("grid")

    tab.show("assets")
    traces = tab.traces("#assets-chart")
    by_type: dict[str, list[float]] = {}
    count: dict[str, int] = {}
    for a in plan["assets"].values():
        acc = by_type.setdefault(a["type"], [0.0] * n)
        for i, v in enumerate(a["power_kw"][:n]):
            acc[i] += v
        count[a["type"]] = count.get(a["type"], 0) + 1
    labels = {
        "inflexible_load": "inflexible load",
        "heat_pump": "heat pumps",
        "ev_charger": "EV charging",
        "battery": "batteries",
        "pv": "PV",
    }
    assert {t["name"] for t in traces} == {f"{labels[k]} ({count[k]})" for k in by_type}
    for t in traces:
        kind = next(k for k, v in labels.items() if t["name"].startswith(v + " ("))
        assert len(t["x"]) == n and _close(t["y"], by_type[kind]), t["name"]
    one = next(aid for aid, a in plan["assets"].items() if a["type"] == "battery")
    tab.page.select_option("#asset-filter", one)
    tab.until(f"document.getElementById('assets-chart').data[0].name.startsWith('{one} ')")
    assert _close(tab.traces("#assets-chart")[0]["y"], plan["assets"][one]["power_kw"][:n])
    tab.shot("assets")

    # set-points: collapsed table with units, filterable; the CSV equals the API's set-points
    assert not tab.page.is_visible("#sp-table")
    assert not any("setpoints.csv" in url for url, _ in tab.wire)  # fetched when opened
    tab.page.click("#setpoints summary")
    tab.page.wait_for_selector("body[data-setpoints=loaded]")
    assert "(kW)" in tab.page.inner_text("#sp-table tr >> nth=0")
    api = served.api("/api/v1/sites/demo/setpoints", horizon=96)
    with tab.page.expect_download() as download:
        tab.page.click("#sp-csv")
    rows_csv = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(rows_csv) == len(api["assets"]) * len(api["intervals"])
    for r in rows_csv:
        i = api["intervals"].index(r["interval_start_utc"])
        assert float(r["power_kw"]) == api["assets"][r["asset"]]["power_kw"][i]
    tab.page.fill("#sp-filter", one)
    visible = tab.page.eval_on_selector_all("#sp-table tr[data-search]", "rs => rs.filter(r => !r.hidden).length")
    assert visible == 1
    tab.no_errors()


def test_performance_page_against_the_api(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["manager"])
    tab.show("performance")
    window = served.api("/dashboard/api/sites/demo/performance", "manager")
    api = served.api("/api/v1/sites/demo/performance", "manager", start=window["start"], end=window["end"])
    assert api["totals"]["import_kwh"] == sum(MEASURED_KW) / 4  # the evaluated readings of T1
    assert tab.page.inner_text("#perf-import b") == f"{api['totals']['import_kwh']:.1f} kWh"
    assert f"{api['evaluated_intervals']} of {api['intervals']}" in tab.page.inner_text("#perf-totals")
    cells = tab.page.eval_on_selector_all("#perf-table tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    assert [row[0] for row in cells[1:]] == sorted(api["connections"])
    tab.shot("performance")
    tab.no_errors()


def test_forecasts_page_draws_the_band(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["manager"])
    tab.show("forecasts")
    now = dt.datetime(2026, 1, 14, 1, 0, tzinfo=dt.UTC)  # the test clock's quarter-hour
    api = served.api(
        "/api/v1/sites/demo/forecasts",
        "manager",
        start=(now - dt.timedelta(days=1)).isoformat(),
        end=(now + dt.timedelta(days=2)).isoformat(),
        target="site",
    )
    traces = tab.traces("#fc-chart")
    assert [t["name"] for t in traces] == ["10 %", "10 %–90 % band", "median"]
    for t, level in zip(traces, (0, 2, 1), strict=True):
        assert len(t["x"]) == len(api["intervals"]) and t["x"][0] == _ms(api["intervals"][0]["start"])
        want = [i["values"][level] for i in api["intervals"]]
        assert [v is None for v in t["y"]] == [v is None for v in want] and any(v is not None for v in want)
        assert _close([v for v in t["y"] if v is not None], [v for v in want if v is not None])
        assert "kW" in t["hover"]
    tab.shot("forecasts")
    tab.no_errors()


def test_planner_sees_scenarios_only(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["planner"], expect="scenarios")
    visible = tab.page.eval_on_selector_all(".tab", "bs => bs.filter(b => !b.hidden).map(b => b.dataset.page)")
    assert visible == ["scenarios"]
    api = served.api("/api/v1/sites/demo/scenarios", "planner")
    rows = tab.page.eval_on_selector_all("#sc-table tr", "rs => rs.slice(1).map(r => r.cells[0].innerText)")
    assert rows == [r["name"] for r in api["runs"]] == ["bigger batteries"]  # not north's run
    for path in ("overview", "grid", "assets", "setpoints.csv", "forecasts", "performance"):
        assert tab.page.request.get(f"{served.url}/dashboard/api/sites/demo/{path}").status == 403, path
    tab.shot("scenarios")
    tab.no_errors()


def test_operator_has_no_performance_page(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["operator"])
    assert tab.page.is_hidden(".tab[data-page=performance]") and tab.page.is_hidden(".tab[data-page=forecasts]")
    assert tab.page.request.get(f"{served.url}/dashboard/api/sites/demo/performance").status == 403
    tab.no_errors()


def test_overview_fits_a_laptop_screen(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["admin"])
    assert tab.page.evaluate("document.documentElement.scrollHeight") <= 768


def test_berlin_time_across_dst(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["admin"])
    text = tab.page.evaluate(
        "[Date.parse('2026-10-25T00:30:00Z'), Date.parse('2026-10-25T01:30:00Z'), Date.parse('2026-03-29T01:00:00Z')]"
        ".map(localText)"
    )
    assert text[0].endswith("02:30 CEST") and text[1].endswith("02:30 CET") and text[2].endswith("03:00 CEST")
    ticks = tab.page.evaluate("berlinTicks(Date.parse('2026-10-24T22:00:00Z'), Date.parse('2026-10-25T23:00:00Z'))")
    expected = [
        "2026-10-24T22:00:00Z",
        "2026-10-25T05:00:00Z",
        "2026-10-25T11:00:00Z",
        "2026-10-25T17:00:00Z",
        "2026-10-25T23:00:00Z",
    ]
    assert ticks["tickvals"] == [_ms(t.replace("Z", "+00:00")) for t in expected]
    assert [t.split("<br>")[0] for t in ticks["ticktext"]] == ["00:00", "06:00", "12:00", "18:00", "00:00"]
    tab.no_errors()


def test_manager_reads_but_cannot_replan(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["manager"])
    for page in PAGES:
        tab.show(page)
    assert tab.page.is_hidden("#replan") and tab.page.is_hidden("#error")
    r = tab.page.request.post(
        f"{served.url}/dashboard/api/sites/demo/replan", headers={"X-Requested-With": "quartiere-dashboard"}
    )
    assert r.status == 403
    tab.no_errors()


def test_operator_can_replan(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["operator"])
    tab.page.click("#replan")
    tab.until("$('who').textContent.includes('re-plan') || !!$('error').textContent")
    assert tab.page.is_hidden("#error"), tab.page.inner_text("#error")
    tab.no_errors()


def test_other_site_key_sees_nothing_of_this_one(tab: Tab, served: Served) -> None:
    tab.sign_in(served.keys["north_manager"])
    assert tab.page.eval_on_selector_all("#site option", "os => os.map(o => o.value)") == ["north"]
    for page in PAGES:
        tab.show(page)
    assert not any("/sites/demo" in url for url, _ in tab.wire)
    for path in ("overview", "grid", "assets", "setpoints.csv"):
        assert tab.page.request.get(f"{served.url}/dashboard/api/sites/demo/{path}").status == 403
    tab.no_errors()


def test_bad_key_shows_one_error(tab: Tab, served: Served) -> None:
    tab.sign_in("qk_0000000000000000_wrong", expect="login-error")
    alerts = tab.page.eval_on_selector_all("[role=alert]", "as => as.filter(a => !a.hidden).map(a => a.innerText)")
    assert alerts == ["Wrong or revoked API key."]
    assert tab.page.is_hidden("#nav") and tab.page.is_hidden("#page-overview")
    assert len(tab.errors) == 1 and "401" in tab.errors[0]  # the refused sign-in request, nothing else
    tab.shot("bad-key")


def test_375px_no_horizontal_overflow(browser: Any, served: Served) -> None:
    t = Tab(browser, served, width=375, height=740)
    try:
        t.sign_in(served.keys["admin"])
        for page in PAGES:
            t.show(page)
            if page == "assets":
                t.page.click("#setpoints summary")
                t.page.wait_for_selector("body[data-setpoints=loaded]")
            width = t.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, (page, width)
            t.shot(f"375-{page}")
        t.no_errors()
    finally:
        t.close()


def test_first_load_of_each_page_under_1_mb(browser: Any, served: Served) -> None:
    """A browser with nothing cached opens each page (``/dashboard#<page>``, signing in there): all
    it receives, the Plotly bundle included, is under 1 MB; the bundle is the versioned partial one,
    compressed (brotli: Chromium accepts it)."""
    per_page: dict[str, int] = {}
    for page in PAGES:
        t = Tab(browser, served)
        try:
            t.sign_in(served.keys["admin"], expect=page)
            t.page.wait_for_load_state("networkidle")
            per_page[page] = sum(b for _, b in t.wire)
            bundle = [b for url, b in t.wire if url.endswith("/plotly-cartesian.min.js")]
            assert len(bundle) == 1 and 300_000 < bundle[0] < 520_000, bundle  # 1.5 MB raw
            t.no_errors()
        finally:
            t.close()
    print(f"\nfirst load, bytes on the wire per page: {per_page}")
    for page, size in per_page.items():
        assert 0 < size <= MB, page


def test_bundle_cached_after_first_load(tab: Tab, served: Served) -> None:
    """Once loaded, the bundle comes from the browser's cache: a page shown again costs its data."""
    tab.sign_in(served.keys["admin"])
    tab.page.reload()
    tab.page.wait_for_selector("body[data-loaded=overview]")
    sizes = [b for url, b in tab.wire if url.endswith("/plotly-cartesian.min.js")]
    assert len(sizes) == 2 and sizes[0] > 300_000 and sizes[1] == 0, sizes  # from the cache (immutable)
    tab.no_errors()


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("role", ["manager", "planner", "operator"])
def test_each_role_sees_its_pages_whole(browser: Any, served: Served, role: str, width: int) -> None:
    """Every page a role may open, as that role sees it: no error panel (no 403 for data it may
    read), nothing of another site requested, no horizontal spill, no console error."""
    t = Tab(browser, served, width=width, height=800)
    try:
        allowed = served.api("/dashboard/api/me", role)["pages"]
        t.sign_in(served.keys[role], expect=allowed[0])
        tabs = t.page.eval_on_selector_all(".tab", "bs => bs.filter(b => !b.hidden).map(b => b.dataset.page)")
        assert tabs == allowed
        for page in allowed:
            t.show(page)
            assert t.page.is_hidden("#error"), (page, t.page.inner_text("#error"))
            if page == "assets":  # the set-point table opens with rows, not a refusal
                t.page.click("#setpoints summary")
                t.page.wait_for_selector("body[data-setpoints=loaded]")
                assert t.page.eval_on_selector_all("#sp-table tr[data-search]", "rs => rs.length") > 0
            assert t.page.evaluate("document.documentElement.scrollWidth") <= width, page
            t.shot(f"{role}-{width}-{page}")
        assert not any("/sites/north" in url for url, _ in t.wire)
        t.no_errors()
    finally:
        t.close()
