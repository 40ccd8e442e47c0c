"""The dashboard's page, files and JSON without a browser: no CDN, a fixed list of files, compact
answers that are gzipped, the session cookie's flags."""

from __future__ import annotations

import re

import httpx

from tests.dashboard.conftest import Served


def test_page_and_files(served: Served) -> None:
    page = httpx.get(f"{served.url}/dashboard")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    for name, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css"), ("plotly.min.js", "javascript")):
        r = httpx.get(f"{served.url}/dashboard/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert f"/dashboard/static/{name}" in page.text or (name == "dashboard.css" and "dashboard.css" in page.text)
    plotly = httpx.get(f"{served.url}/dashboard/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly.headers["content-encoding"] == "gzip" and len(plotly.content) > 3_000_000  # httpx decoded it
    for text in (page.text, httpx.get(f"{served.url}/dashboard/static/dashboard.js").text):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert httpx.get(f"{served.url}/dashboard/static/dashboard.html").status_code == 404
    assert httpx.get(f"{served.url}/dashboard/static/..%2Ftemplates%2Fdashboard.html").status_code == 404
    assert not any(p.startswith("/dashboard") for p in httpx.get(f"{served.url}/openapi.json").json()["paths"])


def test_session_cookie_and_errors(served: Served) -> None:
    with httpx.Client(base_url=served.url) as c:
        assert c.get("/dashboard/api/me").json()["signed_in"] is False
        bad = c.post("/dashboard/session", json={"key": "qk_0000000000000000_wrong"})
        assert bad.status_code == 401 and bad.json()["detail"] == "wrong or revoked API key"
        assert c.get("/dashboard/api/sites/demo/overview").status_code == 401
        ok = c.post("/dashboard/session", json={"key": served.keys["manager"]})
        cookie = ok.headers["set-cookie"].lower()
        assert ok.status_code == 200 and "httponly" in cookie and "samesite=strict" in cookie
        assert ok.json() == {"signed_in": True, "role": "manager", "sites": ["demo"], "can_replan": False,
                             "pages": ["overview", "grid", "assets", "forecasts", "performance"]}
        assert c.get("/dashboard/api/sites/north/overview").status_code == 403
        overview = c.get("/dashboard/api/sites/demo/overview")
        assert overview.status_code == 200
        # the plan's age on the service's (replay) clock, like computed_at: minutes, not months
        assert 0 <= overview.json()["age_s"] < 6 * 3600
        assert c.post("/dashboard/api/sites/demo/replan", headers={"X-Requested-With": "quartiere-dashboard"}
                      ).status_code == 403
        c.delete("/dashboard/session")
        assert c.get("/dashboard/api/me").json()["signed_in"] is False


def test_json_is_gzipped_and_setpoint_fast_path_untouched(served: Served) -> None:
    h = {"X-API-Key": served.keys["admin"], "Accept-Encoding": "gzip"}
    latest = httpx.get(f"{served.url}/api/v1/sites/demo/plans/latest", headers=h)
    assert latest.status_code == 200 and latest.headers.get("content-encoding") == "gzip"
    assert int(latest.headers["content-length"]) < len(latest.content)
    for _ in range(2):  # the route, then the fast path: both uncompressed, the same bytes
        points = httpx.get(f"{served.url}/api/v1/sites/demo/setpoints", headers=h)
        assert points.status_code == 200 and points.json()["assets"] and "content-encoding" not in points.headers
    too_big = httpx.post(f"{served.url}/api/v1/sites/demo/readings", headers=h, content=b"x" * 20_000_000)
    assert too_big.status_code == 413 and too_big.json()["detail"]
    for page in ("overview", "grid", "assets"):
        r = httpx.get(f"{served.url}/dashboard/api/sites/demo/{page}", headers=h)
        assert r.status_code == 200 and len(r.content) < 100_000, page
