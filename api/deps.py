"""Request dependencies: the service context, API-key authentication and per-site rights.

A key comes in ``X-API-Key`` or ``Authorization: Bearer <key>`` (either header twice: 400; see
:mod:`api.edge`, which verifies it before the body is read). Missing or wrong key -> 401;
a known key without the right or outside its sites -> 403; a site the service does not run -> 404.
Keys are never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import ServiceContext
from api.edge import CHALLENGE, SCOPE_KEY, RefusalError, request_key, verify_key
from grid.keys import Right, has_right
from grid.store.apikeys import ApiKey

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
    request: Request,
    ctx: Annotated[ServiceContext, Depends(context)],
    _header: Annotated[str | None, Security(api_key_header)],
    _creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiKey:
    """The key of the request, verified by :class:`api.edge.EdgeMiddleware` before the body was
    read (the two security parameters only document the headers in the OpenAPI document). Without
    the middleware in front, the key is read and verified here with the same functions."""
    key: ApiKey | None = request.scope.get(SCOPE_KEY)
    if key is not None:
        return key
    try:
        token = request_key(request.scope["headers"])
        if token is None:
            raise RefusalError(401, "missing API key (X-API-Key or Authorization: Bearer)", CHALLENGE)
        client = request.client.host if request.client else "unknown"
        return await verify_key(ctx, token, client)
    except RefusalError as refusal:
        raise HTTPException(refusal.status, refusal.detail, refusal.headers) from None


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
    require_right(key, right)
    if not ctx.service.knows(site):
        raise HTTPException(404, f"unknown site {site!r}")


def require_right(key: ApiKey, right: Right) -> None:
    """403 unless the role of `key` may do `right` (at some site)."""
    if not has_right(key.role, right):
        raise HTTPException(403, f"role {key.role.value!r} may not {right.value.replace('_', ' ')}")


Ctx = Annotated[ServiceContext, Depends(context)]
CurrentKey = Annotated[ApiKey, Depends(current_key)]
PlansSite = Annotated[str, Depends(site_access(Right.READ_PLANS))]
SetpointsSite = Annotated[str, Depends(site_access(Right.READ_SETPOINTS))]
ReplanSite = Annotated[str, Depends(site_access(Right.TRIGGER_REPLAN))]
ReadingsSite = Annotated[str, Depends(site_access(Right.READ_READINGS))]
IngestSite = Annotated[str, Depends(site_access(Right.WRITE_READINGS))]
KpisSite = Annotated[str, Depends(site_access(Right.READ_KPIS))]
SitesSite = Annotated[str, Depends(site_access(Right.READ_SITES))]
IfNoneMatch = Annotated[str | None, Header(description="An ETag from an earlier answer: 304 if unchanged.")]
