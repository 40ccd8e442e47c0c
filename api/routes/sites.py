"""Sites as data: ``PUT`` a site (its description and input series) as a new version, ``GET`` the
current version and the history, ``DELETE`` to retire it (its versions, plans and readings stay).

The body of a ``PUT`` is the site YAML's schema, as JSON (``application/json``) or as YAML
(``application/yaml``, ``text/yaml``), whose ``inputs`` carry each series as CSV text (a
``timestamp`` column and one column per asset, as in the input files). It is validated as
``grid plan`` validates a site file and its inputs: a 422 names each field or line and the value.
The same document again stores no new version. The scheduler plans the new version from its next
run on, without a restart, and plans a site that only exists as data too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Ctx, CurrentKey, SitesSite, require_right
from api.params import ID_PATTERN
from api.responses import AUTH, BODY, merged
from api.site_schemas import SeriesSummary, SiteVersionList, SiteVersionMeta, SiteVersionOut
from grid.domain import parse_yaml_mapping
from grid.errors import InputError
from grid.keys import Right
from grid.store import site_versions as store
from grid.store.apikeys import ApiKey
from grid.store.sites import register_site
from grid.timeindex import iso

router = APIRouter(tags=["sites"], responses=AUTH)
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
SiteId = Annotated[str, Path(pattern=ID_PATTERN, description="Site id (as in its description).", examples=["demo"])]
PUT_RESPONSES: dict[int | str, dict[str, Any]] = merged(
    BODY,
    {
        200: {"description": "The document equals the current version: nothing stored."},
        201: {"description": "Stored as a new version."},
        409: {"description": "The path names another site than the document (see 422) or a retired one."},
        415: {"description": "The body is neither JSON nor YAML."},
        422: {
            "description": "The site or a series is refused whole; `detail[].loc` names the field "
            "(`batteries[3].capacity_kwh`) or the series and line (`inputs.base_load line 5 column H001`), "
            "`msg` what is wrong and `input` the value: the messages of `grid plan`."
        },
    },
)
SITE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object", "description": "The site YAML's schema as JSON."}},
        "application/yaml": {"schema": {"type": "string", "description": "The site YAML."}},
    },
}
NOT_STORED: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown site, or a site of the settings (its YAML file) with no stored version."}
}


def _authorize_manage(key: ApiKey, site: str) -> None:
    if not key.covers(site):
        raise HTTPException(403, f"this key is not scoped to site {site!r}")
    require_right(key, Right.MANAGE_SITES)


def _who(key: ApiKey) -> str:
    return f"{key.label or 'key ' + key.key_id} ({key.role.value})"


def parse_document(body: bytes, content_type: str) -> dict[str, Any]:
    """The site document of a request body: JSON or YAML by its content type (415 for another);
    an :class:`InputError` (422) naming the line for a body that does not parse."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in JSON_TYPES + YAML_TYPES and not kind.endswith("+json"):
        raise HTTPException(415, f"send the site as application/json or application/yaml, not {kind or 'no type'!r}")
    if not body.strip():
        raise InputError("body", "is required: the site description with its input series")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("body", f"is not UTF-8 (byte {exc.start})") from None
    if kind in YAML_TYPES:
        _refuse_aliases(text)
        return parse_yaml_mapping(text, "body", "site, connections, ...")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"body:{exc.lineno}", f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise InputError("body", "must be a JSON object with site, connections, ...", type(raw).__name__)
    return raw


def _refuse_aliases(text: str) -> None:
    """YAML anchors and aliases are refused: a few lines of them expand to gigabytes once copied."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                raise InputError(f"body:{line}", "YAML anchors and aliases are not accepted here")
    except yaml.YAMLError:
        return  # the parser that follows names the line


def version_out(row: store.SiteVersion, created: bool | None = None, with_series: bool = False) -> SiteVersionOut:
    return SiteVersionOut(
        **_meta(row).model_dump(),
        created=created,
        description=row.description,
        inputs={name: _series_summary(text) for name, text in row.series.items()},
        series=dict(row.series) if with_series else None,
    )


def _meta(row: store.SiteVersion) -> SiteVersionMeta:
    return SiteVersionMeta(
        site=row.site_id,
        version=row.version,
        created_at=iso(row.created_at) if row.created_at is not None else None,
        created_by=row.created_by,
        changes=row.changes,
        retired=row.retired,
        digest=row.digest,
    )


def _series_summary(text: str) -> SeriesSummary:
    lines = text.strip("\n").split("\n")
    return SeriesSummary(rows=len(lines) - 1, columns=len(lines[0].split(",")) - 1, bytes=len(text.encode()))


def _after_change(ctx: Any) -> None:
    """The service sees the stored sites at once; a running scheduler adds or drops their jobs."""
    ctx.service.refresh_sites()
    if ctx.scheduler is not None:
        from grid.schedule.scheduler import sync_sites

        sync_sites()


@router.put(
    "/sites/{site}",
    response_model=SiteVersionOut,
    responses=PUT_RESPONSES,
    openapi_extra={"requestBody": SITE_BODY},
)
async def put_site(request: Request, response: Response, site: SiteId, key: CurrentKey, ctx: Ctx) -> SiteVersionOut:
    """Store the site's description with its input series as its next version (admin). 201 with
    the new version; 200 and the current version when nothing changed."""
    _authorize_manage(key, site)
    raw = parse_document(await request.body(), request.headers.get("content-type", ""))

    def put() -> tuple[store.SiteVersion, bool]:
        row, created = store.put_site_version(ctx.engine, site, raw, _who(key), ctx.clock())
        if created:  # sensors, assets and EV sessions of the new version, as for a site of the settings
            register_site(ctx.engine, row.site())
            _after_change(ctx)
        return row, created

    row, created = await run_in_threadpool(put)
    response.status_code = 201 if created else 200
    return version_out(row, created)


@router.get("/sites/{site}", response_model=SiteVersionOut, responses=NOT_STORED)
def get_site(
    site: SitesSite,
    ctx: Ctx,
    series: Annotated[bool, Query(description="Include the input series (CSV text per input).")] = False,
) -> SiteVersionOut:
    """The current version of a site stored as data (a retired site: its retirement)."""
    row = store.latest_version(ctx.engine, site, with_series=True)
    if row is None:
        raise HTTPException(404, _not_stored(ctx, site))
    return version_out(row, with_series=series)


@router.get("/sites/{site}/versions", response_model=SiteVersionList, responses=NOT_STORED)
def get_versions(site: SitesSite, ctx: Ctx) -> SiteVersionList:
    """Every version of the site, oldest first: who stored it, when, and what changed."""
    rows = store.site_versions(ctx.engine, site)
    if not rows:
        raise HTTPException(404, _not_stored(ctx, site))
    return SiteVersionList(site=site, versions=[_meta(r) for r in rows])


@router.delete("/sites/{site}", response_model=SiteVersionOut, responses=NOT_STORED)
def delete_site(site: SiteId, key: CurrentKey, ctx: Ctx) -> SiteVersionOut:
    """Retire the site (admin): it is no longer planned; its versions, plans and readings stay
    readable. A ``PUT`` brings it back as a new version."""
    _authorize_manage(key, site)
    retired = store.retire_site(ctx.engine, site, _who(key), ctx.clock())
    if retired is None:
        raise HTTPException(404, _not_stored(ctx, site))
    row, created = retired
    if created:
        _after_change(ctx)
    return version_out(row, created)


def _not_stored(ctx: Any, site: str) -> str:
    path = ctx.settings.sites.get(site)
    if path is not None:
        return f"site {site!r} has no stored version: it is planned from its file {path} (settings GRID_SITES)"
    return f"unknown site {site!r}"
