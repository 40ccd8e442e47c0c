"""Device telemetry: write (bulk JSON) through the one telemetry path, and read the latest states."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.conformance import encodable
from api.deps import Ctx, IngestSite, ReadingsSite
from api.live_schemas import AssetState, LatestStates, TelemetryPayload
from api.params import INSTANT_SCHEMA, parse_instant
from api.responses import AUTH, BODY, merged
from api.schemas import IngestReportOut
from grid.ingest.report import IngestReport, Source
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.store.live import latest_states
from grid.timeindex import iso

router = APIRouter(tags=["telemetry"], responses=AUTH)
REPORT_422: dict[int | str, dict[str, Any]] = merged(
    BODY,
    {
        422: {
            "description": "Every item was rejected (each with its location and field: unknown asset, state "
            "outside [0, capacity], time without offset or in the future, unit that does not fit) or bad input."
        }
    },
)


def telemetry_answer(report: IngestReport) -> JSONResponse:
    """200 with the report; 422 in the validation-error shape when nothing was usable."""
    body = report.as_dict()
    del body["source"]
    if report.rows_read and not (report.accepted or report.duplicates or report.revised):
        detail = [
            {"loc": [r.where, r.field], "msg": r.reason, "type": "rejected_telemetry", "input": r.value}
            for r in report.rejected
        ]
        return JSONResponse(status_code=422, content=encodable({"detail": detail}))
    return JSONResponse(content=encodable(body))


@router.post("/sites/{site}/telemetry", response_model=IngestReportOut, responses=REPORT_422)
def post_telemetry(payload: TelemetryPayload, site: IngestSite, ctx: Ctx) -> JSONResponse:
    """Store device telemetry (state of charge, heat-store content, measured power) as one batch.
    Every item is accepted, a duplicate, a revision or rejected with its path
    (``payload telemetry[3]``), field and reason; rejected items are kept as rejected records."""
    items = payload_items(payload.model_dump(), name="payload")
    report = ingest_telemetry(ctx.engine, site, items, Source("api", "api telemetry"), pd.Timestamp(ctx.clock()))
    return telemetry_answer(report)


@router.get("/sites/{site}/telemetry/latest", response_model=LatestStates)
def get_latest_states(
    site: ReadingsSite,
    ctx: Ctx,
    at: Annotated[
        str | None,
        Query(
            description="The states known at this instant (default: now), RFC 3339.", json_schema_extra=INSTANT_SCHEMA
        ),
    ] = None,
) -> LatestStates:
    """The latest measured state per battery (SoC) and heat pump (store content), kWh."""
    when = parse_instant(at, "at") if at is not None else pd.Timestamp(ctx.clock()).tz_convert("UTC")
    states = latest_states(ctx.engine, site, when)
    return LatestStates(
        site=site,
        at=iso(when),
        states={a: AssetState(value_kwh=v, unit=u, measured_at=iso(t)) for a, (v, u, t) in sorted(states.items())},
    )
