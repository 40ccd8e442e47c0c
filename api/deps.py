"""Request dependencies: the service context, API-key authentication and per-site rights.

A key comes in ``X-API-Key`` or ``Authorization: Bearer <key>``. Missing or wrong key -> 401;
a known key without the right or outside its sites -> 403; a site the service does not run -> 404.
Keys are never logged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from api.context import ServiceContext
from api.outage import PROBE_S, is_unavailable
from grid.keys import Right, has_right
from grid.store.apikeys import ApiKey, authenticate

#: what every authenticated route may answer besides its success and 422
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, wrong or revoked API key."},
    403: {"description": "The key lacks the right or is not scoped to this site."},
    404: {"description": "Unknown site (or resource)."},
}

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`grid keys create`).")
bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


async def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def current_key(
    ctx: Annotated[ServiceContext, Depends(context)],
    header: Annotated[str | None, Security(api_key_header)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiKey:
    """The key of the request. A verified key is kept (by its sha256) for ``auth_cache_s`` so that
    polling does not hit the database; unknown keys are never cached. While the database is
    unavailable, a key verified before keeps working (checked again every ``PROBE_S``)."""
    token = header or (creds.credentials if creds is not None else None)
    if not token:
        raise HTTPException(401, "missing API key (X-API-Key or Authorization: Bearer)", {"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(token.encode()).hexdigest()
    hit = ctx.auth_cache.get(digest)
    if hit is not None and time.monotonic() < hit[0]:
        cached: ApiKey = hit[1]
        return cached
    if hit is not None and ctx.outage.since is not None:  # one probe per key: the others answer from memory
        ctx.auth_cache[digest] = (time.monotonic() + PROBE_S, hit[1])
    try:
        key = await run_in_threadpool(authenticate, ctx.engine, token)
    except SQLAlchemyError as exc:  # database down: a key verified before goes on working
        if hit is None or not is_unavailable(exc):
            raise  # -> 503 (api.errors)
        ctx.outage.down()
        ctx.auth_cache[digest] = (time.monotonic() + PROBE_S, hit[1])
        cached_key: ApiKey = hit[1]
        return cached_key
    if key is None:
        ctx.auth_cache.pop(digest, None)
        raise HTTPException(401, "invalid or revoked API key", {"WWW-Authenticate": "Bearer"})
    if ctx.settings.auth_cache_s > 0:
        ctx.auth_cache[digest] = (time.monotonic() + ctx.settings.auth_cache_s, key)
    return key


def site_access(right: Right) -> Callable[..., Awaitable[str]]:
    """A dependency returning the path's site id once the key may do `right` there."""

    async def check(
        site: Annotated[str, Path(description="Site id (as in its YAML).", examples=["demo"])],
        key: Annotated[ApiKey, Depends(current_key)],
        ctx: Annotated[ServiceContext, Depends(context)],
    ) -> str:
        authorize(ctx, key, site, right)
        return site

    return check


def authorize(ctx: ServiceContext, key: ApiKey, site: str, right: Right) -> None:
    """403 unless `key` may do `right` at `site`; 404 for a site the service does not run."""
    if not key.covers(site):
        raise HTTPException(403, f"this key is not scoped to site {site!r}")
    if not has_right(key.role, right):
        raise HTTPException(403, f"role {key.role.value!r} may not {right.value.replace('_', ' ')}")
    if site not in ctx.settings.sites:
        raise HTTPException(404, f"unknown site {site!r}")


Ctx = Annotated[ServiceContext, Depends(context)]
CurrentKey = Annotated[ApiKey, Depends(current_key)]
PlansSite = Annotated[str, Depends(site_access(Right.READ_PLANS))]
SetpointsSite = Annotated[str, Depends(site_access(Right.READ_SETPOINTS))]
ReplanSite = Annotated[str, Depends(site_access(Right.TRIGGER_REPLAN))]
ReadingsSite = Annotated[str, Depends(site_access(Right.READ_READINGS))]
IngestSite = Annotated[str, Depends(site_access(Right.WRITE_READINGS))]
KpisSite = Annotated[str, Depends(site_access(Right.READ_KPIS))]
IfNoneMatch = Annotated[str | None, Header(description="An ETag from an earlier answer: 304 if unchanged.")]
