"""Set-point polling without the framework: a plain ASGI layer in front of FastAPI.

Operators' devices poll ``GET /api/v1/sites/{site}/setpoints`` many times a minute. When all it
needs is already in memory (the key, verified by :class:`api.edge.EdgeMiddleware` in front of
it, the site's latest plan row and body, the encoded answer for this interval), this layer
answers itself: the same status, body and headers as the route (``api.routes.setpoints``),
which builds them with the same function. Anything else (first request, missing right, bad or
extra query parameters, no plan yet, a cache miss) goes on to FastAPI unchanged, which answers
(errors included) and fills the caches.
"""

from __future__ import annotations

import re

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import ServiceContext
from api.edge import SCOPE_KEY, header
from api.routes.setpoints import latest_loader, setpoints_answer
from grid.keys import Right, has_right

FAST_ANSWERS = Counter("quartiere_setpoints_fast_answers", "Set-point requests answered from memory by the fast path.")
PATH = re.compile(r"^/api/v1/sites/([^/]+)/setpoints$")
HORIZON = re.compile(rb"^horizon=([1-9][0-9]?)$")


class RouteTemplate:
    """What the latency middleware reads from ``scope["route"]``."""

    path = "/api/v1/sites/{site}/setpoints"


ROUTE = RouteTemplate()


class SetpointsFastPath:
    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = PATH.match(scope["path"])
            answer = self.answer(scope, match.group(1)) if match else None
            if answer is not None:
                status, headers, content = answer
                scope["route"] = ROUTE
                FAST_ANSWERS.inc()
                raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
                raw.append((b"content-length", str(len(content)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": raw})
                await send({"type": "http.response.body", "body": content})
                return
        await self.app(scope, receive, send)

    def answer(self, scope: Scope, site: str) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) from memory, or None to let the route answer."""
        ctx = self.ctx
        query: bytes = scope.get("query_string", b"")
        if query:
            found = HORIZON.match(query)
            if found is None or int(found.group(1)) > 96:
                return None
            horizon = int(found.group(1))
        else:
            horizon = 4
        key = scope.get(SCOPE_KEY)
        if key is None:
            return None
        if not (key.covers(site) and has_right(key.role, Right.READ_SETPOINTS) and site in ctx.settings.sites):
            return None
        # A row past its time to live is served for as long again while one background read
        # fetches the new one: the pollers never queue on the database together.
        ttl = ctx.settings.latest_cache_s
        row, expired = ctx.cache.peek_latest(site, ttl)
        if row is None:
            return None
        if expired:
            ctx.cache.refresh_soon(site, latest_loader(ctx, site), ttl)
        body = ctx.cache.peek_body(row.plan_id)
        if body is None:
            return None
        return setpoints_answer(ctx, row, body, horizon, header(scope["headers"], b"if-none-match"))
