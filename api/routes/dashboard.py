"""The web dashboard: one HTML page plus its script and style, served from ``api/dashboard/``.

The page holds no data and needs no key: the browser signs in with an API key (kept in an HttpOnly
session cookie, see :mod:`api.routes.dashboard_data`) and fetches the compact JSON of
``/dashboard/api/...``. No CDN: the charts are Plotly, ``plotly.min.js`` served from the installed
``plotly`` package.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

ROOT = Path(__file__).resolve().parents[1] / "dashboard"
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PLOTLY_JS = "plotly.min.js"
PLOTLY_CSS = "plotly.css"
#: Plotly's rules object starts with this key (plotly.js src/css/_base.scss, built into the bundle)
_RULES_START = '"X,X div":'
_KEY = r"""(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_$][\w$]*))"""  # "quoted" or bare
_VALUE = r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
_RULE = re.compile(_KEY + r"\s*:\s*" + _VALUE + r"\s*[,}]")

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_templates = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(["html"]))


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:  # the page
    """The dashboard page (no data in it; the browser fetches with the key entered there)."""
    config = {"timezone": "Europe/Berlin"}
    page = _templates.get_template("dashboard.html").render(
        config_json=Markup(json.dumps(config).replace("</", "<\\/")), plotly_style_ids=plotly_style_ids()
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/static/{name}")
def static(name: str, request: Request) -> Response:
    """The page's script and style (a fixed list: nothing else under the folder is served)."""
    if name == PLOTLY_JS:
        return plotly_js(request)
    if name == PLOTLY_CSS:
        return Response(plotly_css(), media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})
    media_type = STATIC.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    return FileResponse(ROOT / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


def _plotly_source() -> str:
    from plotly.offline import get_plotlyjs

    source: str = get_plotlyjs()
    return source


@cache
def plotly_css() -> str:
    """The style rules Plotly would inject as an inline ``<style>`` (forbidden by the page's CSP),
    taken from the bundle itself, as a stylesheet. The page marks Plotly's style element
    ``no-inline-styles`` so that Plotly leaves them to this file (plotly.js's strict-CSP mode)."""
    source = _plotly_source()
    start = source.find(_RULES_START)
    if start < 0:
        raise RuntimeError("plotly.min.js: style rules not found (a new plotly.js?)")
    end = source.index("};", start) + 1
    rules = []
    for m in _RULE.finditer(source, start, end):
        key = m.group(1) if m.group(1) is not None else m.group(2)
        selector = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        body = m.group(3) if m.group(3) is not None else m.group(4)
        rules.append(f"{selector} {{{body.replace(chr(92) + chr(39), chr(39)).replace(chr(92) + chr(34), chr(34))}}}")
    rules.reverse()  # Plotly inserts each rule at index 0: the last one comes first
    return "\n".join(rules) + "\n"


@cache
def plotly_style_ids() -> list[str]:
    """Ids of the other ``<style>`` elements Plotly's bundle would add (its map library's CSS) unless
    an element with that id exists: the page holds an empty ``<template>`` of each (no maps here)."""
    return sorted(set(re.findall(r'getElementById\("([0-9a-f]{64})"\)', _plotly_source())))


def plotly_js(request: Request) -> Response:
    """Plotly's browser bundle from the installed python package, gzipped once and kept in memory
    (4.8 MB; 1.5 MB gzipped, cached by the browser for a day)."""
    global _plotly
    if _plotly is None:
        raw = _plotly_source().encode()
        _plotly = (raw, gzip.compress(raw, compresslevel=6))
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(_plotly[1], media_type="text/javascript", headers=headers)
    return Response(_plotly[0], media_type="text/javascript", headers=headers)


_plotly: tuple[bytes, bytes] | None = None
