"""Readings: write (JSON bulk or CSV upload) through the one ingestion path, and read back."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import JSONResponse

from api.conformance import encodable
from api.deps import Ctx, IngestSite, ReadingsSite
from api.params import INSTANT_SCHEMA, check_period, invalid, parse_instant
from api.responses import AUTH, BODY, merged
from api.schemas import IngestReportOut, Readings, ReadingsPayload
from api.uploads import upload_dir
from grid.errors import InputError
from grid.ingest.options import IngestOptions
from grid.ingest.payload import parse_payload
from grid.ingest.pipeline import ingest, ingest_csv
from grid.ingest.report import IngestReport, Source
from grid.schedule import metrics
from grid.store.catalog import IMPORT_REGISTER
from grid.store.readback import load_series
from grid.timeindex import iso

router = APIRouter(tags=["readings"], responses=AUTH)
MAX_SPAN = pd.Timedelta(days=400)
COPY_BYTES = 1 << 20  # an upload is copied and checked in blocks of this size
REPORT_422: dict[int | str, dict[str, Any]] = merged(
    BODY, {422: {"description": "Every record was rejected (each error with its location) or bad input."}}
)


def _answer(site: str, report: IngestReport) -> JSONResponse:
    """200 with the report; 422 in the validation-error shape when nothing was usable."""
    for outcome, n in (("accepted", report.accepted), ("duplicate", report.duplicates), ("revised", report.revised)):
        metrics.INGESTED.labels(site, report.source.kind, outcome).inc(n)
    metrics.INGESTED.labels(site, report.source.kind, "rejected").inc(len(report.rejected))
    body = report.as_dict()
    del body["source"]
    if report.rows_read and not (report.accepted or report.duplicates or report.revised):
        detail = [
            {"loc": [r.where, r.field], "msg": r.reason, "type": "rejected_reading", "input": r.value}
            for r in report.rejected
        ]
        return JSONResponse(status_code=422, content=encodable({"detail": detail}))
    return JSONResponse(content=encodable(body))


@router.post("/sites/{site}/readings", response_model=IngestReportOut, responses=REPORT_422)
def post_readings(payload: ReadingsPayload, site: IngestSite, ctx: Ctx) -> JSONResponse:
    """Store a bulk JSON payload of meter readings as one batch. Every item is accepted, a
    duplicate, a revision or rejected with its path (``payload readings[3]``) and reason."""
    records, rejected = parse_payload(payload.model_dump(), name="payload")
    report = ingest(ctx.engine, site, records, Source("api", "api payload"), IngestOptions(), rejected)
    return _answer(site, report)


@router.post("/sites/{site}/readings/csv", response_model=IngestReportOut, responses=REPORT_422)
def post_readings_csv(
    site: IngestSite,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="CSV (long or wide, see grid.ingest.csvfile).")],
    layout: Annotated[Literal["long", "wide"], Form(alias="format")] = "long",
    unit: Annotated[str | None, Form(description="Unit of a wide file's values.")] = None,
    obis: Annotated[str, Form(description="OBIS code of wide columns named by meter.")] = IMPORT_REGISTER,
) -> JSONResponse:
    """Upload a CSV of readings (``.csv`` or gzip ``.csv.gz``); lines are numbered as in the file
    (header = line 1). The file is streamed to a temporary file and ingested chunk by chunk, as
    ``grid ingest`` does; a ``.gz`` larger than ``max_upload_decompressed_bytes`` once
    decompressed answers 413."""
    name = Path(file.filename or "upload.csv").name
    with upload_dir() as tmp:
        path = tmp / ("upload.csv.gz" if name.endswith(".gz") else "upload.csv")
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, COPY_BYTES)
        if path.suffix == ".gz":
            check_decompressed_size(path, ctx.settings.max_upload_decompressed_bytes, name)
        options = IngestOptions()
        report = ingest_csv(ctx.engine, site, path, layout, unit, obis, options, source_kind="api", name=name)
    return _answer(site, report)


def check_decompressed_size(path: Path, limit: int, name: str) -> None:
    """413 unless the gzip file `path` (uploaded as `name`) decompresses to at most `limit` bytes (read in bounded
    memory, stopping at the limit; a corrupt file is left to the reader, which names its line)."""
    inflate = zlib.decompressobj(wbits=31)  # gzip, one member after another
    total = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(COPY_BYTES), b""):
            data = block
            while data:
                try:
                    total += len(inflate.decompress(data, COPY_BYTES))
                except zlib.error:
                    return
                if total > limit:
                    raise HTTPException(413, f"{name}: more than {limit} bytes once decompressed")
                data = inflate.unconsumed_tail
                if inflate.eof:
                    data, inflate = inflate.unused_data + data, zlib.decompressobj(wbits=31)
                    if not data.strip(b"\0"):
                        break


#: kinds whose sensors sum to a kW or kWh series (weather sensors measure degC or W/m2)
SummedKind = Literal["household_load", "pv", "battery", "ev_charger", "heat_pump", "transformer"]
RELATIONS = (
    "Give exactly one of `sensor` or `kind`; `end` must be after `start` and at most "
    f"{MAX_SPAN.days} days later (else 422)."
)


@router.get(
    "/sites/{site}/readings",
    response_model=Readings,
    responses={
        404: {"description": "Unknown site or sensor."},
        422: {"description": f"Bad query: `detail[].loc` names the parameter. {RELATIONS}"},
    },
)
def get_readings(
    site: ReadingsSite,
    ctx: Ctx,
    start: Annotated[
        str, Query(description="First interval, RFC 3339 with UTC offset.", json_schema_extra=INSTANT_SCHEMA)
    ],
    end: Annotated[
        str, Query(description="End (exclusive), RFC 3339 with UTC offset.", json_schema_extra=INSTANT_SCHEMA)
    ],
    sensor: Annotated[str | None, Query(max_length=200, description="Sensor name or meter_id/obis.")] = None,
    kind: Annotated[SummedKind | None, Query(description="Sum over the sensors of a kind.")] = None,
    quantity: Annotated[Literal["power", "energy"], Query(description="kW (mean) or kWh per interval.")] = "power",
) -> Readings:
    """Measured series of one sensor or a kind's signed sum (> 0 drawn from the grid), per
    interval of [start, end) (instants before 1900 or from 2200 on count as 1900 and 2200)."""
    if (sensor is None) == (kind is None):
        raise invalid("sensor", "give exactly one of sensor or kind", sensor)
    first, last = parse_instant(start, "start"), parse_instant(end, "end")
    check_period(start, end, MAX_SPAN.to_pytimedelta())
    try:
        series = load_series(ctx.engine, site, first, last, sensor=sensor, kind=kind, quantity=quantity)
    except InputError as err:
        if err.where == "sensor":
            raise HTTPException(404, f"unknown sensor {sensor!r} of site {site!r} (a name or meter_id/obis)") from None
        raise
    values = [None if v != v else float(v) for v in series.to_numpy()]
    return Readings(
        site=site,
        sensor=sensor,
        kind=kind,
        quantity=quantity,
        intervals=[iso(t) for t in series.index],
        values=values,
    )
