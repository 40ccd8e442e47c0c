"""The web dashboard: one HTML page plus its script and style, served from ``api/dashboard/``.

The page holds no data and needs no key: the browser asks for an API key (kept in sessionStorage)
and fetches everything from the JSON endpoints in :data:`ENDPOINTS` with ``X-API-Key``. No CDN: the
charts are inline SVG drawn by plain JavaScript.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

ROOT = Path(__file__).resolve().parents[1] / "dashboard"
API_PREFIX = "/api/v1"
#: what the page reads (paths as in the OpenAPI document, under API_PREFIX)
ENDPOINTS = {
    "latest_plan": "/sites/{site}/plans/latest",
    "plans": "/sites/{site}/plans",
    "setpoints": "/sites/{site}/setpoints",
    "forecast_targets": "/sites/{site}/forecasts/targets",
    "forecast": "/sites/{site}/forecasts",
}
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_templates = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(["html"]))


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    """The dashboard page (no data in it; the browser fetches with the key entered there)."""
    config = {"prefix": API_PREFIX, "endpoints": ENDPOINTS, "timezone": "Europe/Berlin"}
    page = _templates.get_template("dashboard.html").render(
        config_json=Markup(json.dumps(config).replace("</", "<\\/"))
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/static/{name}")
def static(name: str) -> FileResponse:
    """The page's script and style (a fixed list: nothing else under the folder is served)."""
    media_type = STATIC.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    return FileResponse(ROOT / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"})
