"""The web dashboard: one HTML page plus its script and style, served from ``api/dashboard/``.

The page holds no data and needs no key: the browser signs in with an API key (kept in an HttpOnly
session cookie, see :mod:`api.routes.dashboard_data`) and fetches the compact JSON of
``/dashboard/api/...``. No CDN, nothing fetched at run time: the charts are Plotly's *cartesian*
partial bundle (scatter, bar, heatmap and a few more trace types; 0.5 MB gzipped where the full
``plotly.min.js`` is 1.5 MB), vendored under ``api/dashboard/static/`` with its licence (see
``PROVENANCE.md`` there).

Static files are read once, compressed once (brotli where the ``brotli`` package is installed, and
gzip) and answered with an ``ETag`` (``If-None-Match`` -> 304). The Plotly bundle's URL carries its
version, so the browser keeps it for a year without asking again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

ROOT = Path(__file__).resolve().parents[1] / "dashboard"
#: the vendored Plotly bundle (npm plotly.js-cartesian-dist-min, see static/PROVENANCE.md)
PLOTLY_FILE = "plotly-cartesian.min.js"
FAVICON = "favicon.svg"
STATIC = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    PLOTLY_FILE: "text/javascript",
    FAVICON: "image/svg+xml",
}
PLOTLY_CSS = "plotly.css"
#: the page's own files may change with any deploy: the browser revalidates them (ETag, 304)
REVALIDATE = "no-cache"
#: a URL that names its content's version never changes
IMMUTABLE = "public, max-age=31536000, immutable"
BROTLI_QUALITY = 9  # 1.5 MB in ~0.1 s; 11 saves 8 % more for ~3 s on the first request
GZIP_LEVEL = 9
#: Plotly's rules object starts with this key (plotly.js src/css/_base.scss, built into the bundle)
_RULES_START = '"X,X div":'
_KEY = r"""(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_$][\w$]*))"""  # "quoted" or bare
_VALUE = r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
_RULE = re.compile(_KEY + r"\s*:\s*" + _VALUE + r"\s*[,}]")

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_templates = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(["html"]))


@dataclass(frozen=True)
class Asset:
    """A static file's bytes as served: raw and compressed, with its ETag."""

    media_type: str
    raw: bytes
    encoded: dict[str, bytes] = field(default_factory=dict)  # content-coding -> body

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.raw).hexdigest()[:32]}"'


def _compress(raw: bytes) -> dict[str, bytes]:
    out = {"gzip": gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)}
    try:
        import brotli
    except ImportError:  # optional: gzip alone is served then
        return out
    out["br"] = brotli.compress(raw, quality=BROTLI_QUALITY)
    return out


@cache
def asset(name: str) -> Asset:
    """The file `name` of the fixed list, read and compressed once (KeyError for any other)."""
    if name == PLOTLY_CSS:
        raw = plotly_css().encode()
        return Asset("text/css", raw, _compress(raw))
    media_type = STATIC[name]
    raw = (ROOT / "static" / name).read_bytes()
    return Asset(media_type, raw, _compress(raw))


def accepted_codings(header: str) -> set[str]:
    """Content-codings an ``Accept-Encoding`` header accepts (those with q > 0)."""
    out = set()
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if coding and q > 0:
            out.add(coding.strip().lower())
    return out


def serve(item: Asset, request: Request, cache_control: str) -> Response:
    """`item` in the best coding the client accepts (brotli, gzip, none); 304 on a matching ETag."""
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding", "ETag": item.etag}
    if item.etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    accepted = accepted_codings(request.headers.get("accept-encoding", ""))
    for coding in ("br", "gzip"):
        if coding in accepted and coding in item.encoded:
            headers["Content-Encoding"] = coding
            return Response(item.encoded[coding], media_type=item.media_type, headers=headers)
    return Response(item.raw, media_type=item.media_type, headers=headers)


@cache
def plotly_version() -> str:
    """plotly.js's version, from the bundle's banner (``* plotly.js (cartesian - minified) v4.1.1``)."""
    head = (ROOT / "static" / PLOTLY_FILE).read_text(encoding="utf-8")[:400]
    found = re.search(r"plotly\.js [^\n]*?v(\d+\.\d+\.\d+)", head)
    if found is None:
        raise RuntimeError(f"{PLOTLY_FILE}: no version in its banner")
    return found.group(1)


def plotly_url() -> str:
    """The bundle's URL, with its version (cached for a year: a new bundle is a new URL)."""
    return f"/dashboard/static/plotly-{plotly_version()}/{PLOTLY_FILE}"


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:  # the page
    """The dashboard page (no data in it; the browser fetches with the key entered there)."""
    config = {"timezone": "Europe/Berlin"}
    page = _templates.get_template("dashboard.html").render(
        config_json=Markup(json.dumps(config).replace("</", "<\\/")),
        plotly_style_ids=plotly_style_ids(),
        plotly_url=plotly_url(),
    )
    return HTMLResponse(page, headers={"Cache-Control": REVALIDATE})


@router.get("/dashboard/static/{name}")
def static(name: str, request: Request) -> Response:
    """The page's script and style (a fixed list: nothing else under the folder is served)."""
    if name not in STATIC and name != PLOTLY_CSS:
        raise HTTPException(404, f"no dashboard file {name!r}")
    return serve(asset(name), request, REVALIDATE)


@router.get("/favicon.ico")
def favicon(request: Request) -> Response:
    """The service's icon (SVG) where browsers look for it first."""
    return serve(asset(FAVICON), request, "public, max-age=86400")


@router.get("/dashboard/static/plotly-{version}/{name}")
def plotly_bundle(version: str, name: str, request: Request) -> Response:
    """The Plotly bundle under its versioned URL (kept by the browser for a year)."""
    if version != plotly_version() or name != PLOTLY_FILE:
        raise HTTPException(404, f"no dashboard file plotly-{version}/{name}")
    return serve(asset(PLOTLY_FILE), request, IMMUTABLE)


def _plotly_source() -> str:
    return (ROOT / "static" / PLOTLY_FILE).read_text(encoding="utf-8")


@cache
def plotly_css() -> str:
    """The style rules Plotly would inject as an inline ``<style>`` (forbidden by the page's CSP),
    taken from the bundle itself, as a stylesheet. The page marks Plotly's style element
    ``no-inline-styles`` so that Plotly leaves them to this file (plotly.js's strict-CSP mode)."""
    source = _plotly_source()
    start = source.find(_RULES_START)
    if start < 0:
        raise RuntimeError(f"{PLOTLY_FILE}: style rules not found (a new plotly.js?)")
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
    """Ids of the other ``<style>`` elements Plotly's bundle would add (a map library's CSS) unless
    an element with that id exists: the page holds an empty ``<template>`` of each (no maps here)."""
    return sorted(set(re.findall(r'getElementById\("([0-9a-f]{64})"\)', _plotly_source())))
