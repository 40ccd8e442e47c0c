"""Answers that keep to the OpenAPI document where the framework's defaults do not.

* 422 for a request that fails validation echoes the bad ``input``; a NaN or infinity (Python's
  JSON parser reads ``NaN`` and ``1e999``) or a lone surrogate in it made the answer itself
  unencodable (500). They are echoed as text instead (``"NaN"``, ``"inf"``, ``"\\udc80"``).
* 405 names in ``Allow`` the methods of the resource the path names. Starlette lists those of the
  first route template the path matches, so ``OPTIONS .../plans/trigger`` answered ``Allow: GET``
  (of ``.../plans/{plan_id}``) and ``.../readings`` only ``POST``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def encodable(value: Any) -> Any:
    """`value` with non-finite floats as text and strings made UTF-8 encodable (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value) if not math.isnan(value) else "NaN"
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 (``detail: [{type, loc, msg, input}]``), always encodable."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(status_code=422, content={"detail": encodable(jsonable_encoder(errors))})


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], int, list[str]]]:
    """(path regex, number of path parameters, methods) per path of the OpenAPI document."""
    cached: list[tuple[re.Pattern[str], int, list[str]]] | None = getattr(app.state, "allow_templates", None)
    if cached is None:
        cached = []
        for path, item in app.openapi().get("paths", {}).items():
            params = re.findall(r"\{[^}]+\}", path)
            regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            methods = [m.upper() for m in item if m in HTTP_METHODS]
            if "GET" in methods:
                methods.append("HEAD")  # answered by every GET route
            cached.append((regex, len(params), methods))
        app.state.allow_templates = cached
    return cached


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Methods the OpenAPI document names for `path`: of the templates that match it, those with
    the fewest parameters (a literal segment names its own resource: ``plans/trigger`` is not
    ``plans/{plan_id}``). Empty for paths the document does not describe."""
    matching = [(n, methods) for regex, n, methods in _templates(app) if regex.match(path)]
    if not matching:
        return []
    fewest = min(n for n, _ in matching)
    return sorted({m for n, methods in matching if n == fewest for m in methods})


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with ``Allow`` from the OpenAPI document (Starlette's own for undocumented paths)."""
    detail = exc.detail if isinstance(exc, HTTPException) else "Method Not Allowed"
    own = (exc.headers or {}) if isinstance(exc, HTTPException) else {}
    methods = allowed_methods(request.app, request.url.path)
    headers = {"Allow": ", ".join(methods)} if methods else dict(own)
    return JSONResponse(status_code=405, content={"detail": detail}, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(405, method_not_allowed)
