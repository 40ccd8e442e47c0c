"""The service's edge: what every request passes before the framework reads a byte of its body.

:class:`EdgeMiddleware` (a plain ASGI layer, outside the set-point fast path and FastAPI) does,
in this order, for every request under ``/api/v1``:

1. the API key is read by :func:`request_key`, the one parser of keys (the fast path and the
   routes take the key it verified): two ``X-API-Key`` or two ``Authorization`` headers answer
   400 (the fast path used to take the last, the route the first);
2. no key: 401; a ``Content-Length`` above the limit: 413;
3. the key is verified (:func:`verify_key`: from memory when verified within ``auth_cache_s``, else
   in the database) and kept in the ASGI scope for the routes; wrong keys are counted per client
   address, and a client over ``wrong_key_burst`` (refilled at ``wrong_key_per_s``) answers 429
   with ``Retry-After`` until it slows down, without touching the database;
4. only then is the body read, counted on the way: past ``max_body_bytes`` (a file upload:
   ``max_upload_bytes``) the request answers 413 without reading further.

``/docs``, ``/redoc``, ``/openapi.json`` and ``/metrics`` need a key too unless the settings make
them public (by default they are public only when the service listens on a loopback address).
Every answer says ``X-Content-Type-Options: nosniff``; the dashboard's pages carry a Content
Security Policy (scripts and styles from the service only, no framing) and ``X-Frame-Options``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import ServiceContext
from api.outage import PROBE_S, RETRY_AFTER_S, is_unavailable
from grid.keys import split_key
from grid.store.apikeys import ApiKey, authenticate

API_PREFIX = "/api/v1"
#: where the verified key of a request is kept in its ASGI scope
SCOPE_KEY = "quartiere.api_key"
#: paths public only when the settings say so (see ``Settings.docs_public``, ``metrics_public``)
DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
METRICS_PATHS = ("/metrics",)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: the only inline style attributes the dashboard allows: the two values Plotly's heatmap sets on
#: its image (its crisp-pixel ``image-rendering`` declarations, and empty), by their sha256
PLOTLY_STYLE_HASHES = (
    "sha256-AR/cKIZjWPcPmBUPDA6oti9XBiTbJvz0Cro2J1VzzS8=",
    "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
)
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; "
    f"style-src 'self' 'unsafe-hashes' {' '.join(repr(h) for h in PLOTLY_STYLE_HASHES)}; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
BEARER = "bearer"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class RefusalError(Exception):
    """An answer given at the edge: status, detail and headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


class BodyTooLarge(HTTPException):
    """Raised from a request's ``receive`` past the body limit (FastAPI re-raises HTTPExceptions
    met while reading a body, so the route answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def request_key(headers: Any) -> str | None:
    """The API key of a request from its raw ASGI headers: ``X-API-Key``, else ``Authorization:
    Bearer <key>``; None without one. Two ``X-API-Key`` or two ``Authorization`` headers:
    :class:`RefusalError` 400 (layers that read the first and the last would disagree)."""
    api_keys: list[bytes] = []
    authorizations: list[bytes] = []
    for name, value in headers:
        if name == b"x-api-key":
            api_keys.append(value)
        elif name == b"authorization":
            authorizations.append(value)
    if len(api_keys) > 1 or len(authorizations) > 1:
        raise RefusalError(400, "more than one API key header (send one X-API-Key or one Authorization: Bearer)")
    if api_keys:
        return api_keys[0].decode("latin-1").strip() or None
    if authorizations:
        scheme, _, credentials = authorizations[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() == BEARER and credentials.strip():
            return credentials.strip()
    return None


def header(headers: Any, wanted: bytes) -> str | None:
    """The first value of header `wanted` (lower case) in raw ASGI headers, as Starlette reads it."""
    for name, value in headers:
        if name == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def verify_key(ctx: ServiceContext, token: str, client: str) -> ApiKey:
    """The stored key of `token`, or :class:`RefusalError` (401 wrong or revoked, 429 too many wrong
    keys from `client`, 503 database unavailable).

    A key verified within ``auth_cache_s`` is trusted from memory (keys are kept by their sha256;
    wrong keys never are). Once that has passed, the key is served from memory for up to another
    ``auth_cache_s`` while one background check reads the database, so that many pollers of one
    key never wait on the database together; a revoked key stops working within twice
    ``auth_cache_s``. While the database is unavailable, a key verified before keeps working
    (checked again every ``PROBE_S``)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    hit = ctx.auth_cache.get(digest)
    now = time.monotonic()
    if hit is not None and now < hit[0]:
        cached: ApiKey = hit[1]
        return cached
    if hit is None:
        wait_s = ctx.wrong_keys.retry_after_s(client)
        if wait_s:
            raise RefusalError(429, "too many wrong API keys from this client", {"Retry-After": str(wait_s)})
        if split_key(token) is None:  # not even shaped like a key: wrong without asking the database
            ctx.wrong_keys.failed(client)
            raise RefusalError(401, "invalid or revoked API key", CHALLENGE)
    elif (ctx.outage.since is None and now < hit[0] + ctx.settings.auth_cache_s) or (
        ctx.outage.since is not None and digest in ctx.auth_checks
    ):  # within the grace, or the database is down and being probed for this key: from memory
        _checking(ctx, digest, token, client)  # in the background (the running one, if any)
        known: ApiKey = hit[1]
        return known
    return await asyncio.shield(_checking(ctx, digest, token, client))


def _checking(ctx: ServiceContext, digest: str, token: str, client: str) -> asyncio.Future[ApiKey]:
    """The check of a key running now, else a new one: requests with the same key that come while
    it runs wait for it instead of each reading the database."""
    task: asyncio.Future[ApiKey] | None = ctx.auth_checks.get(digest)
    if task is None:
        counted = digest not in ctx.auth_cache
        if counted:
            ctx.wrong_keys.failed(client)  # counted now, given back if the key is right
        task = asyncio.ensure_future(_check(ctx, digest, token, client, counted))
        ctx.auth_checks[digest] = task

        def done(finished: asyncio.Future[ApiKey]) -> None:
            ctx.auth_checks.pop(digest, None)
            if not finished.cancelled():
                finished.exception()  # retrieved: a background check nobody waits for fails quietly

        task.add_done_callback(done)
    return task


async def _check(ctx: ServiceContext, digest: str, token: str, client: str, counted: bool) -> ApiKey:
    """Verify `token` in the database now (see :func:`verify_key`); `counted`: the attempt was
    counted as a wrong key of `client` in advance (given back when it is right)."""
    hit = ctx.auth_cache.get(digest)
    if hit is not None and ctx.outage.since is not None:  # one probe per key: the others answer from memory
        ctx.auth_cache[digest] = (time.monotonic() + PROBE_S, hit[1])
    try:
        key = await run_in_threadpool(authenticate, ctx.engine, token)
    except SQLAlchemyError as exc:  # database down: a key verified before goes on working
        if not is_unavailable(exc):
            raise
        ctx.outage.down()
        if counted:
            ctx.wrong_keys.refund(client)
        if hit is None:
            raise RefusalError(503, f"{ctx.outage.reason}; retry later", {"Retry-After": str(RETRY_AFTER_S)}) from None
        ctx.auth_cache[digest] = (time.monotonic() + PROBE_S, hit[1])
        cached_key: ApiKey = hit[1]
        return cached_key
    if key is None:
        ctx.auth_cache.pop(digest, None)
        if not counted:  # a key known before, revoked now
            ctx.wrong_keys.failed(client)
        raise RefusalError(401, "invalid or revoked API key", CHALLENGE)
    if counted:
        ctx.wrong_keys.refund(client)
    if ctx.settings.auth_cache_s > 0:
        ctx.auth_cache[digest] = (time.monotonic() + ctx.settings.auth_cache_s, key)
    return key


def public(setting: bool | None, host: str) -> bool:
    """A setting of ``docs_public``/``metrics_public``; unset: public when listening on loopback."""
    return setting if setting is not None else host in LOOPBACK


async def refuse(send: Send, refusal: RefusalError) -> None:
    """Answer `refusal` as ``{"detail": ...}`` JSON."""
    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in refusal.headers.items()]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        settings = self.ctx.settings
        limit = settings.max_body_bytes
        try:
            if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
                content_type = header(scope["headers"], b"content-type") or ""
                if content_type.lower().startswith("multipart/form-data"):
                    limit = settings.max_upload_bytes
                scope[SCOPE_KEY] = await self.authenticate(scope, limit)
            elif (path in DOC_PATHS and not public(settings.docs_public, settings.host)) or (
                path in METRICS_PATHS and not public(settings.metrics_public, settings.host)
            ):
                scope[SCOPE_KEY] = await self.authenticate(scope, limit)
        except RefusalError as refusal:
            if _has_body(scope["headers"]):  # close rather than read (and drop) a body nobody wants
                refusal.headers.setdefault("Connection", "close")
            await refuse(send, refusal)
            return
        dashboard = path == "/dashboard" or path.startswith("/dashboard/")
        started = False

        async def send_hardened(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-content-type-options", b"nosniff")]
                if dashboard:
                    extra += [(b"content-security-policy", DASHBOARD_CSP.encode()), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, _limited(receive, limit), send_hardened)
        except BodyTooLarge as exc:  # raised where no exception handler answered it
            if started:
                raise
            await refuse(send, RefusalError(413, exc.detail, {"Connection": "close"}))

    async def authenticate(self, scope: Scope, limit: int) -> ApiKey:
        token = request_key(scope["headers"])
        if token is None:
            raise RefusalError(401, "missing API key (X-API-Key or Authorization: Bearer)", CHALLENGE)
        length = header(scope["headers"], b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise RefusalError(413, f"request body larger than {limit} bytes")
        return await verify_key(self.ctx, token, _client(scope))


def _has_body(headers: Any) -> bool:
    length = header(headers, b"content-length")
    return header(headers, b"transfer-encoding") is not None or (length is not None and length.strip() not in ("", "0"))


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive` that raises :class:`BodyTooLarge` once the body passes `limit` bytes."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return limited
