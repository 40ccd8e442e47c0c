"""Compression of the service's answers (the dashboard's pages and JSON, the plans): gzip for
clients that accept it, except the set-point polls, which the fast path (:mod:`api.fastpath`)
answers byte for byte like the route: both stay uncompressed (small, and identical whichever
layer answers)."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.fastpath import PATH as SETPOINTS_PATH

MINIMUM_BYTES = 1024


class Compression:
    """GZipMiddleware for every HTTP request but ``GET .../setpoints`` (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not SETPOINTS_PATH.match(scope["path"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
