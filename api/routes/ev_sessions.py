"""EV charging sessions as events: arrival (POST), change (PATCH), plug-out; read back with events.

The rules beyond the schema (a charger of the site, departure after arrival and not yet past, the
energy need within the car's capacity, one car per charger at a time) are in
:mod:`grid.ingest.sessions`; the planner reads the sessions from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Response

from api.deps import Ctx, IngestSite, ReadingsSite
from api.live_schemas import SESSION_ID, EvSessionChange, EvSessionIn, EvSessionList, EvSessionOut, PlugOut
from api.refusals import refusals_kept
from api.responses import AUTH, BODY, merged
from grid.ingest.sessions import (
    SessionConflictError,
    UnknownSessionError,
    change_session,
    create_session,
    plug_out,
)
from grid.store.live import StoredSession, get_session, list_sessions, session_events

router = APIRouter(tags=["ev-sessions"], responses=AUTH)
T = TypeVar("T")
CONTENT_422 = (
    "Bad input: `detail[].loc` names the field (an unknown charger, departure not after arrival or already "
    "past, energy need above the car's capacity, target_soc without capacity_kwh)."
)
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = merged(
    BODY,
    {
        409: {
            "description": "Conflicts with the stored state: another car on the charger, or the session exists "
            "with other fields, or it was plugged out."
        },
        422: {"description": CONTENT_422},
    },
)
SessionId = Annotated[str, Path(pattern=SESSION_ID, description="The session id.")]


def session_out(session: StoredSession, events: list[dict[str, Any]] | None = None) -> EvSessionOut:
    return EvSessionOut(**session.as_dict(), events=events)


def _apply(call: Callable[[], T]) -> T:
    """Run a session command; its own errors as 404 and 409 (input errors become 422)."""
    try:
        return call()
    except UnknownSessionError as exc:
        raise HTTPException(404, str(exc)) from None
    except SessionConflictError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/sites/{site}/ev-sessions", status_code=201, response_model=EvSessionOut, responses=WRITE_RESPONSES)
def post_session(body: EvSessionIn, site: IngestSite, ctx: Ctx, response: Response) -> EvSessionOut:
    """A car arrived (or is expected): 201 with the stored session; 200 when a session with this id
    and the same fields exists already (a request sent again)."""
    data = body.model_dump(exclude_none=True, exclude_unset=True)
    now = pd.Timestamp(ctx.clock())
    with refusals_kept(ctx.engine, site, "POST ev-sessions", data, now):
        session, created = _apply(lambda: create_session(ctx.engine, site, data, "api", now))
    if not created:
        response.status_code = 200
    return session_out(session)


@router.get("/sites/{site}/ev-sessions", response_model=EvSessionList)
def get_sessions(
    site: ReadingsSite,
    ctx: Ctx,
    include_done: Annotated[bool, Query(description="Include sessions plugged out.")] = False,
) -> EvSessionList:
    """The site's sessions by arrival."""
    return EvSessionList(site=site, sessions=[session_out(s) for s in list_sessions(ctx.engine, site, include_done)])


@router.get(
    "/sites/{site}/ev-sessions/{session_id}",
    response_model=EvSessionOut,
    responses={404: {"description": "Unknown site or session."}},
)
def get_one_session(site: ReadingsSite, session_id: SessionId, ctx: Ctx) -> EvSessionOut:
    """One session with its events (created, changed, plugged_out) in the order they came."""
    session = get_session(ctx.engine, site, session_id)
    if session is None:
        raise HTTPException(404, f"no EV session {session_id!r} at site {site!r}")
    return session_out(session, session_events(ctx.engine, site, session_id))


@router.patch(
    "/sites/{site}/ev-sessions/{session_id}",
    response_model=EvSessionOut,
    responses=merged(WRITE_RESPONSES, {404: {"description": "Unknown site or session."}}),
)
def patch_session(body: EvSessionChange, site: IngestSite, session_id: SessionId, ctx: Ctx) -> EvSessionOut:
    """Change the expected departure, the energy need (or target SoC) or the V2G consent."""
    data = body.model_dump(exclude_none=True, exclude_unset=True)
    now = pd.Timestamp(ctx.clock())
    with refusals_kept(ctx.engine, site, f"PATCH ev-sessions/{session_id}", data, now):
        session, _changed = _apply(lambda: change_session(ctx.engine, site, session_id, data, "api", now))
    return session_out(session)


@router.post(
    "/sites/{site}/ev-sessions/{session_id}/plug-out",
    response_model=EvSessionOut,
    responses=merged(BODY, {404: {"description": "Unknown site or session."}, 422: {"description": CONTENT_422}}),
)
def post_plug_out(site: IngestSite, session_id: SessionId, ctx: Ctx, body: PlugOut | None = None) -> EvSessionOut:
    """The car left (``at``, default now; not before its arrival). Plugging out again changes nothing."""
    data = body.model_dump(exclude_none=True, exclude_unset=True) if body is not None else {}
    now = pd.Timestamp(ctx.clock())
    with refusals_kept(ctx.engine, site, f"POST ev-sessions/{session_id}/plug-out", data, now):
        session, _changed = _apply(lambda: plug_out(ctx.engine, site, session_id, data, "api", now))
    return session_out(session)
