"""What-if scenarios of a site: submit (202 + run URL), poll the run, read its KPI comparison
against the baseline, export it as CSV or Parquet, list the runs.

The baseline is the site of the URL (its YAML and inputs); the body is a scenario as in a YAML
file without ``baseline`` and ``solver`` (runs use one HiGHS thread and the service's time
limit). The edits are applied and the evaluation windows checked before the run is queued, so a
scenario that cannot be evaluated answers 422 with ``loc`` naming the edit and field, e.g.
``["body", "edits", 1, "id"]``. Runs and results are kept in the store (:mod:`grid.store.scenarios`).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Field

from api.context import ServiceContext
from api.deps import Ctx, CurrentKey, authorize, require_right, site_access
from api.params import ID_PATTERN
from api.responses import AUTH, BODY, merged
from api.scenario_schemas import ScenarioResultOut, ScenarioRunList, ScenarioRunOut, ScenarioRunSummary
from api.stored_baseline import stored_baseline
from grid.errors import InputError, InputErrors, _jsonable
from grid.keys import Right
from grid.scenarios.edits import apply_edits
from grid.scenarios.evaluate import load_baseline, windows_of
from grid.scenarios.runs import ScenarioRunner, result_tables
from grid.scenarios.spec import ScenarioBody, ScenarioSpec, SetPrices, SolverSettings
from grid.store import scenarios as store
from grid.store import site_versions
from grid.store.scenarios import ScenarioRunRow
from grid.timeindex import iso

RETRY_AFTER_S = 2
BODY_ROOTS = ("edits", "period", "representative_days")
EXPORTS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
TABLES = {
    "results": "one row per evaluation (baseline, scenario) with status, seconds and every KPI.",
    "comparison": "one row per scenario and KPI with baseline, value, delta and delta_rel.",
}
_CREATE_LOCK = threading.Lock()

ScenariosSite = Annotated[str, Depends(site_access(Right.RUN_SCENARIOS))]
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="A scenario run id.")]
QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many runs of this site queued or running (or too many requests); retry later."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown site or scenario run."}}


def runner_of(app: FastAPI) -> ScenarioRunner:
    """The app's scenario runner (made at start-up, or at first use without a lifespan)."""
    with _CREATE_LOCK:
        runner: ScenarioRunner | None = getattr(app.state, "scenario_runner", None)
        if runner is None:
            ctx: ServiceContext = app.state.ctx
            runner = app.state.scenario_runner = ScenarioRunner(ctx.engine, ctx.clock)
        return runner


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runner_of(app).recover()
    try:
        yield
    finally:
        runner_of(app).shutdown()
        app.state.scenario_runner = None


router = APIRouter(tags=["scenarios"], responses=AUTH, lifespan=lifespan)


def _runner(request: Request) -> ScenarioRunner:
    return runner_of(request.app)


Runner = Annotated[ScenarioRunner, Depends(_runner)]


# --- validation -----------------------------------------------------------------------------------


def _item(loc: list[str | int], msg: str, value: Any = InputError._MISSING) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "input_error", "loc": ["body", *loc], "msg": msg}
    if value is not InputError._MISSING:
        item["input"] = _jsonable(value)
    return item


def loc_of(where: str) -> list[str | int]:
    """``edits[1].id`` as ``["edits", 1, "id"]``."""
    return [int(n) if n else name for n, name in re.findall(r"\[(\d+)\]|([^.\[\]]+)", where)]


def error_item(err: InputError) -> dict[str, Any]:
    """An InputError of the edits or windows (``edits[1].id``) as a 422 item with ``loc``
    ``["body", "edits", 1, "id"]``; problems of the edited site as a whole go under ``edits``."""
    value = err.value if err.has_value else InputError._MISSING
    parts = loc_of(err.where)
    if parts and parts[0] in BODY_ROOTS:
        return _item(parts, err.what, value)
    return _item(["edits"], f"edited site, {err.where}: {err.what}", value)


def checked_spec(ctx: ServiceContext, site: str, body: ScenarioBody) -> ScenarioSpec:
    """The scenario on the site's baseline once its edits apply and its windows are covered and
    small enough; else RequestValidationError (422) naming every problem."""
    files = [
        _item(["edits", i, "file"], "files are not read over the API: give constant_eur_per_kwh or scale", e.file)
        for i, e in enumerate(body.edits)
        if isinstance(e, SetPrices) and e.file is not None
    ]
    if files:
        raise RequestValidationError(files)
    _check_hours(ctx, body, body.period.hours if body.period is not None else None)
    solver = SolverSettings(threads=1, time_limit_s=ctx.settings.solver_time_limit_s)
    stored = site_versions.version_of(ctx.engine, site)
    # a site stored as data is its current version (written as a file), else its file of the settings
    path = stored_baseline(ctx.engine, site) if stored is not None else ctx.settings.sites.get(site)
    if path is None:
        raise HTTPException(409, f"site {site!r} is retired: PUT a new version to run scenarios on it")
    spec = body.to_spec(path.resolve(), solver)
    try:
        baseline, inputs = load_baseline(spec.baseline_path)
        edited, edited_inputs = apply_edits(baseline, inputs, list(spec.edits), spec.base_dir)
        windows = windows_of(spec, edited, edited_inputs)
    except InputErrors as errs:
        raise RequestValidationError([error_item(e) for e in errs.errors]) from None
    except InputError as err:
        raise RequestValidationError([error_item(err)]) from None
    _check_hours(ctx, body, sum(len(index) for index, _ in windows) * edited.site.resolution_min / 60)
    return spec


def _check_hours(ctx: ServiceContext, body: ScenarioBody, hours: float | None) -> None:
    """422 when the windows plan more hours than a run may (checked on the body first, before
    any index is built, then on the windows as the inputs resolve them)."""
    if body.representative_days is not None:
        hours = sum(w.hours for w in body.representative_days) if hours is None else hours
    if hours is not None and hours > ctx.settings.scenario_max_hours:
        where = "period" if body.representative_days is None else "representative_days"
        msg = f"plans {hours:g} h in all, more than the {ctx.settings.scenario_max_hours:g} h a run may plan"
        raise RequestValidationError([_item([where], msg, hours)])


# --- answers --------------------------------------------------------------------------------------


def _path(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params).path)


def summary(request: Request, row: ScenarioRunRow) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "site": row.site_id,
        "name": row.name,
        "status": row.status,
        "scenario_status": row.scenario_status,
        "message": row.message,
        "submitted_at": iso(row.submitted_at),
        "started_at": iso(row.started_at) if row.started_at else None,
        "finished_at": iso(row.finished_at) if row.finished_at else None,
        "run_url": _path(request, "get_scenario_run", site=row.site_id, run_id=row.run_id),
    }


def run_out(ctx: ServiceContext, request: Request, row: ScenarioRunRow) -> ScenarioRunOut:
    scenario, result = store.run_documents(ctx.engine, row.run_id)
    exports = {}
    if result is not None:
        for table in TABLES:
            for fmt in EXPORTS:
                name = f"{table}.{fmt}"
                exports[name] = _path(request, f"scenario_{table}_{fmt}", site=row.site_id, run_id=row.run_id)
    return ScenarioRunOut(
        **summary(request, row),
        scenario=scenario,
        result=None if result is None else ScenarioResultOut.model_validate(result),
        exports=exports,
    )


def _row(ctx: ServiceContext, site: str, run_id: str) -> ScenarioRunRow:
    row = store.get_run(ctx.engine, site, run_id)
    if row is None:
        raise HTTPException(404, f"no scenario run {run_id!r} for site {site!r}")
    return row


# --- routes ---------------------------------------------------------------------------------------


@router.post(
    "/sites/{site}/scenarios",
    status_code=202,
    response_model=ScenarioRunOut,
    responses=merged(BODY, QUEUE_FULL),
)
def submit_scenario(
    site: ScenariosSite, body: ScenarioBody, request: Request, response: Response, ctx: Ctx, runner: Runner
) -> ScenarioRunOut:
    """Evaluate a scenario (edits of the site) and its baseline in the background (202). Poll
    ``run_url`` (``Location``) after ``Retry-After`` seconds until ``status`` is succeeded or
    failed; ``result.comparison`` then holds every KPI against the baseline, and ``exports``
    the CSV and Parquet files."""
    spec = checked_spec(ctx, site, body)
    if store.count_active(ctx.engine, site) >= ctx.settings.scenario_queue_max:
        raise HTTPException(429, f"{ctx.settings.scenario_queue_max} scenario run(s) of {site!r} are still going")
    run_id = runner.submit(site, spec, body.model_dump(mode="json"))
    out = run_out(ctx, request, _row(ctx, site, run_id))
    response.headers["Location"] = out.run_url
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return out


class SiteScenarioBody(ScenarioBody):
    """A scenario with the site it edits (its baseline) named in the body."""

    site: str = Field(description="Site id whose current description is the baseline.", examples=["demo"])


async def body_site_access(request: Request, key: CurrentKey, ctx: Ctx) -> None:
    """Rights before the body's content: 403 for a key that may not run scenarios (or not at the
    body's ``site``), 404 for an unknown site, before the body is validated (422). FastAPI has
    parsed the JSON before any dependency runs, so this reads it as parsed."""
    require_right(key, Right.RUN_SCENARIOS)
    try:
        body = await request.json()
    except ValueError:  # not JSON: the validation answers 422
        return
    site = body.get("site") if isinstance(body, dict) else None
    if isinstance(site, str):
        authorize(ctx, key, site, Right.RUN_SCENARIOS)


@router.post(
    "/scenarios",
    status_code=202,
    response_model=ScenarioRunOut,
    responses=merged(AUTH, BODY, QUEUE_FULL),
    dependencies=[Depends(body_site_access)],
)
def submit_site_scenario(
    body: SiteScenarioBody, key: CurrentKey, request: Request, response: Response, ctx: Ctx, runner: Runner
) -> ScenarioRunOut:
    """The same as ``POST /sites/{site}/scenarios`` with the site in the body (``site``)."""
    authorize(ctx, key, body.site, Right.RUN_SCENARIOS)
    scenario = ScenarioBody.model_validate(body.model_dump(exclude={"site"}, exclude_unset=True))
    return submit_scenario(body.site, scenario, request, response, ctx, runner)


@router.get("/sites/{site}/scenarios", response_model=ScenarioRunList, responses=NOT_FOUND)
def list_scenario_runs(
    site: ScenariosSite,
    request: Request,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500, description="How many of the newest runs.")] = 50,
) -> ScenarioRunList:
    """The newest scenario runs of a site, newest first (without scenarios and results)."""
    rows = store.list_runs(ctx.engine, site, limit)
    return ScenarioRunList(site=site, runs=[ScenarioRunSummary(**summary(request, r)) for r in rows])


@router.get("/sites/{site}/scenarios/{run_id}", response_model=ScenarioRunOut, responses=NOT_FOUND)
def get_scenario_run(
    site: ScenariosSite, run_id: RunId, request: Request, response: Response, ctx: Ctx
) -> ScenarioRunOut:
    """A scenario run; while queued or running the answer carries ``Retry-After`` (seconds)."""
    row = _row(ctx, site, run_id)
    if row.active:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return run_out(ctx, request, row)


def table_file(frame: pd.DataFrame, fmt: str, filename: str) -> Response:
    """`frame` as a CSV or Parquet download named `filename`."""
    if fmt == "csv":
        content: bytes = frame.to_csv(index=False, lineterminator="\n").encode()
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        content = buffer.getvalue()
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content=content, media_type=EXPORTS[fmt], headers=headers)


def export_table(ctx: ServiceContext, site: str, run_id: str, table: str, fmt: str) -> Response:
    """A finished run's `table` (results or comparison) as `fmt` (csv or parquet); 409 without a result."""
    row = _row(ctx, site, run_id)
    _scenario, result = store.run_documents(ctx.engine, row.run_id)
    if result is None:
        raise HTTPException(409, f"scenario run {run_id!r} has no result ({row.status}: {row.message})")
    return table_file(result_tables(result)[table], fmt, f"{row.name}-{table}.{fmt}")


def _export(table: str, fmt: str) -> Callable[..., Response]:
    def export(site: ScenariosSite, run_id: RunId, ctx: Ctx) -> Response:
        return export_table(ctx, site, run_id, table, fmt)

    export.__name__ = f"scenario_{table}_{fmt}"
    export.__doc__ = f"The run's {table} table as {fmt.upper()}: {TABLES[table]}"
    return export


for _table in TABLES:
    for _fmt, _media in EXPORTS.items():
        router.add_api_route(
            f"/sites/{{site}}/scenarios/{{run_id}}/{_table}.{_fmt}",
            _export(_table, _fmt),
            methods=["GET"],
            name=f"scenario_{_table}_{_fmt}",
            response_class=Response,
            responses={
                200: {"content": {_media: {"schema": {"type": "string", "format": "binary"}}}},
                409: {"description": "The run has not finished, or finished without a result."},
                **NOT_FOUND,
            },
        )
