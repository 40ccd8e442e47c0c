"""Re-plan trigger: 202 + job URL + Retry-After; poll the job until it is finished."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response

from api.deps import Ctx, ReplanSite
from api.jobs import ACTIVE, Job
from api.params import ID_PATTERN
from api.responses import AUTH
from api.schemas import JobOut
from grid.timeindex import iso

router = APIRouter(tags=["plans"], responses=AUTH)
RETRY_AFTER_S = 2


def job_out(request: Request, job: Job) -> JobOut:
    job_url = str(request.url_for("get_job", site=job.site_id, job_id=job.job_id).path)
    plan_url = None
    if job.plan_id is not None:
        plan_url = str(request.url_for("get_plan", site=job.site_id, plan_id=job.plan_id).path)
    return JobOut(
        job_id=job.job_id,
        site=job.site_id,
        status=job.status,
        submitted_at=iso(job.submitted_at),
        finished_at=iso(job.finished_at) if job.finished_at else None,
        plan_id=job.plan_id,
        plan_status=job.plan_status,
        plan_url=plan_url,
        message=job.message,
        job_url=job_url,
    )


@router.post("/sites/{site}/plans/trigger", status_code=202, response_model=JobOut)
def trigger(
    site: ReplanSite,
    request: Request,
    response: Response,
    ctx: Ctx,
) -> JobOut:
    """Start a re-plan from the current interval now (202). Poll ``job_url`` (``Location``) after
    ``Retry-After`` seconds until ``status`` is succeeded, failed or skipped; then ``plan_url``
    names the new plan. While a job for the site runs, the same job is returned."""
    job, _created = ctx.jobs.submit(site)
    out = job_out(request, job)
    response.headers["Location"] = out.job_url
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return out


@router.get("/sites/{site}/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "Unknown job."}})
def get_job(
    site: ReplanSite,
    job_id: Annotated[str, Path(pattern=ID_PATTERN, description="The job id (from the trigger's answer).")],
    request: Request,
    response: Response,
    ctx: Ctx,
) -> JobOut:
    """A re-plan job; while queued or running the answer carries ``Retry-After`` (seconds)."""
    job = ctx.jobs.get(job_id)
    if job is None or job.site_id != site:
        raise HTTPException(404, f"no job {job_id!r} for site {site!r}")
    if job.status in ACTIVE:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return job_out(request, job)
