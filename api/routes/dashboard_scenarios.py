"""The dashboard's Scenarios page (planner role): run a scenario from a file of the scenario folder
(``GRID_SCENARIO_DIR``) or from JSON as ``POST /api/v1/sites/{site}/scenarios`` takes it, follow a
run while it goes, read its KPI comparison against the baseline, run a sweep file as one scenario
run per case and read the sweep as a table of cases by KPI, and download both as CSV or Parquet.

Everything goes through what the API's scenario routes use: the same validation
(:func:`api.routes.scenarios.checked_spec`, 422 naming the edit and field), the same runner and
store, the same exports. A sweep is its cases (``<sweep>-case-NNN``, see
:func:`grid.scenarios.sweep.expand_cases`), each queued as a scenario run; its table is read back
from the newest run of each case. The run's cost: each case plans its baseline too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from api.context import ServiceContext
from api.routes.dashboard_data import PAGES, Ctx, Key, SiteId, may_read
from api.routes.scenarios import checked_spec, error_item, export_table, loc_of, runner_of, summary, table_file
from grid.errors import InputError, InputErrors
from grid.scenarios.spec import ScenarioBody, SweepSpec, read_yaml, spec_errors, sweep_from_dict
from grid.scenarios.sweep import Case, expand_cases
from grid.store import scenarios as store

router = APIRouter(prefix="/dashboard/api/sites/{site}", include_in_schema=False)
RIGHTS = PAGES["scenarios"]
#: fields of a scenario file that the API sets itself (the site's YAML, the service's solver)
FILE_ONLY = ("baseline", "solver")
#: how many runs of a site the sweep view searches for its cases
RUNS_SEARCHED = 500
Table = Literal["results", "comparison"]
Fmt = Literal["csv", "parquet"]


def _csrf(request: Request) -> None:
    """Writes only from the page (a cross-site form cannot send this header)."""
    if request.headers.get("x-requested-with") != "quartiere-dashboard":
        raise HTTPException(403, "scenario runs start only from the dashboard page")


# --- the files -------------------------------------------------------------------------------


def scenario_files(ctx: ServiceContext, site: str) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The YAML files of the scenario folder whose baseline is `site`'s YAML: name -> (path, content)."""
    folder = ctx.settings.scenario_dir
    if folder is None or not folder.is_dir():
        return {}
    site_yaml = ctx.settings.sites[site].resolve()
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            raw = read_yaml(path)
        except (InputError, InputErrors):  # not a scenario file: not offered
            continue
        baseline = raw.get("baseline")
        if isinstance(baseline, str) and (path.parent / baseline).resolve() == site_yaml:
            out[path.name] = (path, raw)
    return out


def _file(ctx: ServiceContext, site: str, name: str) -> tuple[Path, dict[str, Any]]:
    found = scenario_files(ctx, site).get(name)
    if found is None:
        raise HTTPException(404, f"no scenario file {name!r} for site {site!r}")
    return found


def is_sweep(raw: dict[str, Any]) -> bool:
    return "parameters" in raw or "cases" in raw


@router.get("/scenario-files")
async def files(site: SiteId, key: Key, ctx: Ctx) -> dict[str, Any]:
    """The scenario and sweep files that may be run on the site."""
    may_read(key, ctx, site, RIGHTS)
    found = await run_in_threadpool(scenario_files, ctx, site)
    return {
        "site": site,
        "files": [
            {
                "file": name,
                "name": raw.get("name"),
                "description": raw.get("description", ""),
                "kind": "sweep" if is_sweep(raw) else "scenario",
            }
            for name, (_path, raw) in found.items()
        ],
    }


# --- running ---------------------------------------------------------------------------------


def scenario_body(raw: dict[str, Any], where: list[str | int]) -> ScenarioBody:
    """A scenario file's content (or typed-in JSON) as the API's body; 422 naming the field."""
    try:
        return ScenarioBody.model_validate({k: v for k, v in raw.items() if k not in FILE_ONLY})
    except ValidationError as exc:
        items = [{"type": "input_error", "loc": [*where, *loc_of(e.where)], "msg": e.what} for e in spec_errors(exc)]
        raise RequestValidationError(items) from None


def sweep_bodies(
    ctx: ServiceContext, path: Path, raw: dict[str, Any]
) -> tuple[SweepSpec, list[Case], list[ScenarioBody]]:
    """The sweep file at `path` (content `raw`), its cases, and these as scenario bodies (named
    ``<sweep>-case-NNN``, described by their parameter values); 422 for a sweep that does not
    validate, has a broken case or too many."""
    try:
        spec = sweep_from_dict(raw, base_dir=path.parent, context=path.name)
    except InputErrors as errs:
        raise RequestValidationError([error_item(e) for e in errs.errors]) from None
    cases = expand_cases(spec)
    if len(cases) > ctx.settings.sweep_max_cases:
        msg = f"{len(cases)} cases, more than the {ctx.settings.sweep_max_cases} a sweep may queue here"
        raise RequestValidationError([{"type": "input_error", "loc": ["body", "file"], "msg": msg}])
    bodies = []
    for case in cases:
        if case.spec is None:
            raise RequestValidationError(
                [{"type": "input_error", "loc": ["body", "file"], "msg": f"case {case.name}: {case.error}"}]
            )
        dumped = case.spec.model_dump(mode="json", exclude={"baseline", "solver", "base_dir"}, exclude_none=True)
        bodies.append(scenario_body({**dumped, "description": f"{spec.name}: {case.name}"}, ["body", "file"]))
    return spec, cases, bodies


def submit(ctx: ServiceContext, request: Request, site: str, bodies: list[ScenarioBody]) -> list[str]:
    """Check every body as the API does, then queue them all (429 when runs of the site are still
    going: a sweep counts as one submission)."""
    specs = [checked_spec(ctx, site, b) for b in bodies]
    if store.count_active(ctx.engine, site) >= ctx.settings.scenario_queue_max:
        raise HTTPException(429, f"{ctx.settings.scenario_queue_max} scenario run(s) of {site!r} are still going")
    runner = runner_of(request.app)
    return [runner.submit(site, spec, b.model_dump(mode="json")) for spec, b in zip(specs, bodies, strict=True)]


@router.post("/scenarios", status_code=202)
def run(
    site: SiteId,
    key: Key,
    ctx: Ctx,
    request: Request,
    file: Annotated[str | None, Body(max_length=200)] = None,
    scenario: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """Queue the scenario file `file` (a sweep file: each of its cases), or `scenario` (the JSON
    ``POST /api/v1/sites/{site}/scenarios`` takes); the run ids, and the sweep's file."""
    _csrf(request)
    may_read(key, ctx, site, RIGHTS)
    if (file is None) == (scenario is None):
        raise HTTPException(422, "give file or scenario, not both")
    if scenario is not None:
        return {"run_ids": submit(ctx, request, site, [scenario_body(scenario, ["body", "scenario"])]), "sweep": None}
    assert file is not None
    path, raw = _file(ctx, site, file)
    if is_sweep(raw):
        return {"run_ids": submit(ctx, request, site, sweep_bodies(ctx, path, raw)[2]), "sweep": file}
    return {"run_ids": submit(ctx, request, site, [scenario_body(raw, ["body", "file"])]), "sweep": None}


# --- reading ---------------------------------------------------------------------------------


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


@router.get("/scenarios/{run_id}")
async def one_run(site: SiteId, run_id: str, key: Key, ctx: Ctx, request: Request) -> dict[str, Any]:
    """A run's status (poll it while it goes) and, once finished, its KPI comparison."""
    may_read(key, ctx, site, RIGHTS)
    row = await run_in_threadpool(store.get_run, ctx.engine, site, run_id)
    if row is None:
        raise HTTPException(404, f"no scenario run {run_id!r} for site {site!r}")
    _scenario, result = await run_in_threadpool(store.run_documents, ctx.engine, run_id)
    base = f"/dashboard/api/sites/{site}/scenarios/{run_id}"
    return {
        **summary(request, row),
        "active": row.active,
        "comparison": []
        if result is None
        else [
            {
                k: (_finite(r[k]) if k in ("baseline", "value", "delta", "delta_rel") else r[k])
                for k in ("kpi", "baseline", "value", "delta", "delta_rel")
            }
            for r in result.get("comparison", [])
        ],
        "exports": {}
        if result is None
        else {f"{t}.{f}": f"{base}/{t}.{f}" for t in ("comparison", "results") for f in ("csv", "parquet")},
    }


@router.get("/scenarios/{run_id}/{table}.{fmt}")
def run_table(site: SiteId, run_id: str, table: Table, fmt: Fmt, key: Key, ctx: Ctx) -> Response:
    """The run's comparison or results table, as ``GET /api/v1/.../{table}.{fmt}``."""
    may_read(key, ctx, site, RIGHTS)
    return export_table(ctx, site, run_id, table, fmt)


def sweep_table(ctx: ServiceContext, site: str, name: str) -> tuple[dict[str, list[Any]], pd.DataFrame]:
    """The sweep file's parameters, and one row per case: its parameter values, the newest run of
    the case (id, status) and, once finished, every KPI's value and delta against the baseline."""
    path, raw = _file(ctx, site, name)
    if not is_sweep(raw):
        raise HTTPException(404, f"{name!r} is not a sweep file")
    spec, cases, bodies = sweep_bodies(ctx, path, raw)
    newest: dict[str, Any] = {}
    for r in store.list_runs(ctx.engine, site, RUNS_SEARCHED):  # newest first
        newest.setdefault(r.name, r)
    rows = []
    for case, body in zip(cases, bodies, strict=True):
        row: dict[str, Any] = {"case": case.name, **{f"param.{k}": v for k, v in case.params.items()}}
        run = newest.get(body.name)
        row.update(
            run_id=run.run_id if run else None,
            status=run.status if run else "not run",
            message=run.message if run else "",
        )
        if run is not None and not run.active:
            _scenario, result = store.run_documents(ctx.engine, run.run_id)
            for r in (result or {}).get("comparison", []):
                row[r["kpi"]] = _finite(r["value"])
                row[f"{r['kpi']}.delta"] = _finite(r["delta"])
        rows.append(row)
    return {k: list(v) for k, v in spec.parameters.items()}, pd.DataFrame(rows)


@router.get("/sweep")
async def sweep(site: SiteId, key: Key, ctx: Ctx, file: Annotated[str, Query(max_length=200)]) -> dict[str, Any]:
    """The sweep file's cases with their runs' status and KPIs (see :func:`sweep_table`)."""
    may_read(key, ctx, site, RIGHTS)
    parameters, frame = await run_in_threadpool(sweep_table, ctx, site, file)
    frame = frame.astype(object).where(frame.notna(), None)
    kpis = [c for c in frame.columns if f"{c}.delta" in frame.columns]
    base = f"/dashboard/api/sites/{site}/sweep"
    return {
        "site": site,
        "file": file,
        "parameters": parameters,
        "kpis": kpis,
        "finished": int(frame["status"].isin(["succeeded", "failed"]).sum()),
        "cases": frame.to_dict(orient="records"),
        "exports": {f: f"{base}.{f}?file={file}" for f in ("csv", "parquet")},
    }


@router.get("/sweep.{fmt}")
def sweep_file(site: SiteId, fmt: Fmt, key: Key, ctx: Ctx, file: Annotated[str, Query(max_length=200)]) -> Response:
    """The sweep's table (one row per case, every KPI's value and delta) as CSV or Parquet."""
    may_read(key, ctx, site, RIGHTS)
    _parameters, frame = sweep_table(ctx, site, file)
    return table_file(frame, fmt, f"{Path(file).stem}-sweep.{fmt}")
