"""The dashboard's page, files and JSON without a browser: no CDN, a fixed list of files, compact
answers that are gzipped, the session cookie's flags."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httpx

from api.edge import DASHBOARD_CSP, PLOTLY_STYLE_HASHES
from api.routes.dashboard import PLOTLY_FILE, ROOT, accepted_codings
from tests.dashboard.conftest import Served


def test_page_and_files(served: Served) -> None:
    page = httpx.get(f"{served.url}/dashboard")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    bundle = re.search(r'<script src="(/dashboard/static/plotly-4\.1\.1/plotly-cartesian\.min\.js)">', page.text)
    assert bundle, "the page loads the versioned partial Plotly bundle"
    vendored = (ROOT / "static" / PLOTLY_FILE).read_bytes()
    files = (
        ("/dashboard/static/dashboard.js", "javascript"),
        ("/dashboard/static/dashboard.css", "text/css"),
        ("/dashboard/static/plotly.css", "text/css"),
        (bundle.group(1), "javascript"),
    )
    for path, kind in files:
        r = httpx.get(f"{served.url}{path}")
        assert r.status_code == 200 and kind in r.headers["content-type"], path
        assert path in page.text
        assert r.headers["etag"] and "Accept-Encoding" in r.headers["vary"]
        again = httpx.get(f"{served.url}{path}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content, path
    # the bundle: brotli, else gzip, else raw; the same bytes as the vendored file; cached for a year
    for coding in ("br", "gzip", "identity"):
        r = httpx.get(f"{served.url}{bundle.group(1)}", headers={"Accept-Encoding": f"{coding}, foo;q=0"})
        assert r.headers.get("content-encoding", "identity") == coding and r.content == vendored
        assert "immutable" in r.headers["cache-control"] and "max-age=31536000" in r.headers["cache-control"]
        if coding != "identity":
            assert int(r.headers["content-length"]) < 520_000, coding  # 1.5 MB raw
    assert (
        httpx.get(f"{served.url}{bundle.group(1)}", headers={"Accept-Encoding": "br;q=0, gzip"}).headers[
            "content-encoding"
        ]
        == "gzip"
    )
    assert "no-cache" in httpx.get(f"{served.url}/dashboard/static/dashboard.js").headers["cache-control"]
    icon = httpx.get(f"{served.url}/favicon.ico")  # public, like the page
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content
    assert '<link rel="icon" type="image/svg+xml" href="/dashboard/static/favicon.svg">' in page.text
    assert httpx.get(f"{served.url}/dashboard/static/favicon.svg").content == icon.content
    assert httpx.get(f"{served.url}/dashboard/static/plotly-4.0.0/{PLOTLY_FILE}").status_code == 404
    assert httpx.get(f"{served.url}/dashboard/static/plotly.min.js").status_code == 404
    for text in (page.text, httpx.get(f"{served.url}/dashboard/static/dashboard.js").text):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    for name in ("dashboard.html", "PROVENANCE.md", "plotly-cartesian.LICENSE", "..%2Ftemplates%2Fdashboard.html"):
        assert httpx.get(f"{served.url}/dashboard/static/{name}").status_code == 404, name
    assert not any(p.startswith("/dashboard") for p in httpx.get(f"{served.url}/openapi.json").json()["paths"])


#: `type: "..."` of the page's layout objects (shapes, axes), not trace types
LAYOUT_TYPES = {"line", "rect", "linear", "category", "date"}


def test_bundle_has_the_trace_types_drawn() -> None:
    """The partial bundle registers the trace types the page draws (scatter, bar, heatmap)."""
    source = (ROOT / "static" / PLOTLY_FILE).read_text(encoding="utf-8")
    registered = set(re.findall(r'moduleType:"trace",name:"(\w+)"', source))
    assert {"scatter", "bar", "heatmap"} <= registered
    assert "scattermapbox" not in registered and "scatter3d" not in registered  # the partial bundle
    drawn = set(re.findall(r'type: "(\w+)"', (ROOT / "static" / "dashboard.js").read_text(encoding="utf-8")))
    assert "scatter" in drawn and drawn - LAYOUT_TYPES <= registered, drawn


def test_accepted_codings() -> None:
    assert accepted_codings("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert accepted_codings("br;q=0, gzip;q=0.5") == {"gzip"}
    assert accepted_codings("") == set()


def test_session_cookie_and_errors(served: Served) -> None:
    with httpx.Client(base_url=served.url) as c:
        assert c.get("/dashboard/api/me").json()["signed_in"] is False
        bad = c.post("/dashboard/session", json={"key": "qk_0000000000000000_wrong"})
        assert bad.status_code == 401 and bad.json()["detail"] == "wrong or revoked API key"
        assert c.get("/dashboard/api/sites/demo/overview").status_code == 401
        ok = c.post("/dashboard/session", json={"key": served.keys["manager"]})
        cookie = ok.headers["set-cookie"].lower()
        assert ok.status_code == 200 and "httponly" in cookie and "samesite=strict" in cookie
        assert ok.json() == {
            "signed_in": True,
            "role": "manager",
            "sites": ["demo"],
            "can_replan": False,
            "pages": ["overview", "grid", "assets", "forecasts", "performance"],
        }
        assert c.get("/dashboard/api/sites/north/overview").status_code == 403
        overview = c.get("/dashboard/api/sites/demo/overview")
        assert overview.status_code == 200
        # the plan's age on the service's (replay) clock, like computed_at: minutes, not months
        assert 0 <= overview.json()["age_s"] < 6 * 3600
        assert (
            c.post("/dashboard/api/sites/demo/replan", headers={"X-Requested-With": "quartiere-dashboard"}).status_code
            == 403
        )
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


def test_csp_allows_only_plotlys_heatmap_styles() -> None:
    """The CSP's style hashes are those of the values Plotly's heatmap puts in a style attribute:
    its ``image-rendering`` declarations joined as the bundle joins them (``k: v; ``), and ""."""
    source = (ROOT / "static" / PLOTLY_FILE).read_text(encoding="utf-8")
    found = re.search(r"CSS_DECLARATIONS=(\[\[.*?\]\]);", source)
    assert found, "the heatmap's style declarations (a new plotly.js?)"
    style = "".join(f"{k}: {v}; " for k, v in json.loads(found.group(1)))
    digest = {"sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() for t in (style, "")}
    assert set(PLOTLY_STYLE_HASHES) == digest
    assert all(f"'{h}'" in DASHBOARD_CSP for h in PLOTLY_STYLE_HASHES) and "unsafe-inline" not in DASHBOARD_CSP
